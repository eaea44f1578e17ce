// NetGuard's state in Azure Tables (Azurite locally): findings, baselines, approvals and the audit trail.
import { createHash, randomBytes } from 'node:crypto';
import { isRestError } from '@azure/core-rest-pipeline';
import { odata, TableClient, type TableEntityResult } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import { tableClientOptions } from './clientOptions';
import { storageConnectionString, storageCredentialFromEnvironment, storageServiceUrl, usesPlainHttp } from './storageAccount';
import type { CachedCluster, CachedSubnet, TopologyCacheStore } from '../azure/topologyCache';
import { z } from 'zod';
import type { ControlId, Finding } from '../types';
import { approvalRecordSchema, auditEntrySchema, cachedClusterSchema, cachedSubnetSchema, parseStored, storedFindingSchema } from './schemas';
import {
  approvalIdFor,
  type ApprovalRecord,
  type ApprovalState,
  type AuditEntry,
  type EventClaim,
  type KnownFindings,
  type StateStore,
  type StoredFinding,
} from './types';

export const DEFAULT_TABLE_PREFIX = 'netguard';

export const TABLE_KINDS = ['findings', 'baselines', 'approvals', 'audit', 'events', 'remediations', 'topology'] as const;
export type TableKind = (typeof TABLE_KINDS)[number];

export interface TableStoreOptions {
  /** Letters and digits, starting with a letter; the tables are `<prefix>findings`, `<prefix>audit`, … */
  tablePrefix?: string;
}

/** A storage call that failed; the message names the table and the operation. */
export class StoreError extends Error {
  readonly table: string;
  readonly operation: string;
  readonly statusCode?: number;
  readonly code?: string;
  constructor(table: string, operation: string, cause: unknown) {
    const status = isRestError(cause) ? cause.statusCode : undefined;
    const code = isRestError(cause) ? cause.code : undefined;
    // The service may answer with an XML or JSON error document: keep its words, not its markup.
    const raw = cause instanceof Error ? cause.message : String(cause);
    const text = raw
      .replace(/<\?xml[^>]*\?>/g, '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 300);
    const head = [status, code].filter((p) => p !== undefined && p !== '').join(' ');
    super(`Azure Tables: ${operation} on table "${table}" failed${head ? ` (${head})` : ''}: ${text}`, { cause });
    this.name = 'StoreError';
    this.table = table;
    this.operation = operation;
    this.statusCode = status;
    this.code = code;
  }
}

const statusOf = (e: unknown): number | undefined => (isRestError(e) ? e.statusCode : undefined);
/** A missing row, as opposed to a missing table (which is a real failure, not "no data"). */
const isMissingRow = (e: unknown) => statusOf(e) === 404 && !(isRestError(e) && e.code === 'TableNotFound');

// Keys may not contain / \ # ? or control characters, and are limited to 1 KiB. ARM ids are full of
// slashes, so they are lower-cased (ARM ids are case-insensitive) and percent-encoded; a very long
// one keeps a readable head and a hash of the whole, so the key stays short and still unique.
const MAX_KEY_PART = 250;
export function tableKey(value: string): string {
  const encoded = encodeURIComponent(value.toLowerCase());
  if (encoded.length <= MAX_KEY_PART) return encoded;
  const digest = createHash('sha256').update(encoded).digest('hex');
  return `${encoded.slice(0, MAX_KEY_PART - digest.length - 1)}~${digest}`;
}

/** A finding is per control, cluster and target: one NSG shared by two clusters has two findings. */
function findingKeys(control: ControlId, resourceId: string, targetId: string) {
  // encodeURIComponent always encodes "|", so the separator cannot occur inside either part.
  return { partitionKey: control, rowKey: `${tableKey(resourceId)}|${tableKey(targetId)}` };
}

function approvalKeys(control: string, targetId: string) {
  return { partitionKey: control, rowKey: tableKey(targetId) };
}

const BASELINE_PARTITION = 'api-authorized-ranges';

function subscriptionOfId(id: string): string {
  return (/^\/subscriptions\/([^/]+)/i.exec(id)?.[1] ?? '').toLowerCase();
}
function topologyPartition(subscriptionId: string): string {
  return `sub|${tableKey(subscriptionId)}`;
}

// A string property holds at most 64 KiB (32K UTF-16 characters); longer JSON is split across
// numbered properties (`changeJson`, `changeJson_1`, …) so nothing is ever cut off.
const JSON_CHUNK = 30_000;
function jsonProperties(name: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  const json = JSON.stringify(value);
  const props: Record<string, string> = {};
  for (let i = 0, part = 0; i < json.length || part === 0; i += JSON_CHUNK, part++) {
    props[part === 0 ? `${name}Json` : `${name}Json_${part}`] = json.slice(i, i + JSON_CHUNK);
  }
  return props;
}
function readJson(entity: Record<string, unknown>, name: string): unknown {
  const first = entity[`${name}Json`];
  if (typeof first !== 'string') return undefined;
  let json = first;
  for (let part = 1; typeof entity[`${name}Json_${part}`] === 'string'; part++) json += entity[`${name}Json_${part}`] as string;
  return JSON.parse(json);
}

/** Drops undefined values: the service would otherwise store them as nulls. */
function defined<T extends Record<string, unknown>>(props: T): T {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as T;
}
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

type Row = TableEntityResult<Record<string, unknown>>;

// Audit row keys sort newest first inside a day's partition: the inverted millisecond, then an
// inverted per-process sequence (later calls in the same millisecond first), then random bits so
// two processes writing in the same millisecond never collide.
const MAX_TIME_MS = 8_640_000_000_000_000; // the largest JavaScript Date
const MAX_SEQUENCE = 1e12;
let auditSequence = 0;
function auditRowKey(atMs: number): string {
  const seq = auditSequence++ % MAX_SEQUENCE;
  const invertedTime = String(MAX_TIME_MS - atMs).padStart(16, '0');
  const invertedSeq = String(MAX_SEQUENCE - 1 - seq).padStart(12, '0');
  return `${invertedTime}-${invertedSeq}-${randomBytes(6).toString('hex')}`;
}

// Tables are created once per process (per account and name), not on every call.
const tablesReady = new Map<string, Promise<void>>();

/** Creates the table on first use in this process (409 = it exists); a failure lets a later call try again. */
export async function ensureTable(client: TableClient): Promise<TableClient> {
  const key = `${client.url}|${client.tableName}`;
  let ready = tablesReady.get(key);
  if (!ready) {
    ready = client.createTable().catch((e: unknown) => {
      if (statusOf(e) === 409) return; // TableAlreadyExists (or being created by another process)
      tablesReady.delete(key);
      throw new StoreError(client.tableName, 'createTable', e);
    });
    tablesReady.set(key, ready);
  }
  await ready;
  return client;
}

export type TableClientFactory = (tableName: string) => TableClient;

export class TableStateStore implements StateStore, TopologyCacheStore {
  private readonly clients: Record<TableKind, TableClient>;
  private readonly knownTopologies = new Set<string>();

  /** Usually built with fromConnectionString, fromAccountUrl or storeFromEnvironment. */
  constructor(makeClient: TableClientFactory, options: TableStoreOptions = {}) {
    const prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX;
    if (!/^[A-Za-z][A-Za-z0-9]{0,40}$/.test(prefix)) {
      throw new Error(`Table prefix "${prefix}" must be letters and digits (at most 41), starting with a letter.`);
    }
    this.clients = Object.fromEntries(TABLE_KINDS.map((kind) => [kind, makeClient(`${prefix}${kind}`)])) as Record<
      TableKind,
      TableClient
    >;
  }

  /**
   * `UseDevelopmentStorage=true`, an explicit Azurite string (plain http) or a real account's string.
   * Plain-http endpoints are allowed here because shared-key requests carry a signature, not the key.
   */
  static fromConnectionString(connectionString: string, options: TableStoreOptions = {}): TableStateStore {
    const clientOptions = tableClientOptions({ allowInsecureConnection: usesPlainHttp(connectionString, 'table') });
    return new TableStateStore((name) => TableClient.fromConnectionString(connectionString, name, clientOptions), options);
  }

  /** Identity-based access (managed identity in Azure): `https://<account>.table.core.windows.net`. */
  static fromAccountUrl(accountUrl: string, credential: TokenCredential, options: TableStoreOptions = {}): TableStateStore {
    const url = accountUrl.replace(/\/+$/, '');
    return new TableStateStore((name) => new TableClient(url, name, credential, tableClientOptions()), options);
  }

  /** The table service the store talks to, e.g. `https://<account>.table.core.windows.net`. */
  get accountUrl(): string {
    return this.clients.findings.url;
  }

  /** The actual table names (for tools and tests that look at the raw rows). */
  tableName(kind: TableKind): string {
    return this.clients[kind].tableName;
  }

  // ---- plumbing ----

  private table(kind: TableKind): Promise<TableClient> {
    return ensureTable(this.clients[kind]);
  }

  private async call<T>(kind: TableKind, operation: string, run: (client: TableClient) => Promise<T>): Promise<T> {
    const client = await this.table(kind);
    try {
      return await run(client);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(client.tableName, operation, e);
    }
  }

  /** undefined when the row does not exist. */
  private async getRow(kind: TableKind, partitionKey: string, rowKey: string): Promise<Row | undefined> {
    const client = await this.table(kind);
    try {
      return await client.getEntity<Record<string, unknown>>(partitionKey, rowKey);
    } catch (e) {
      if (isMissingRow(e)) return undefined;
      throw new StoreError(client.tableName, `getEntity(${partitionKey}, ${rowKey})`, e);
    }
  }

  private listRows(kind: TableKind, operation: string, filter?: string): Promise<Row[]> {
    return this.call(kind, operation, async (client) => {
      const rows: Row[] = [];
      for await (const row of client.listEntities<Record<string, unknown>>({ queryOptions: filter ? { filter } : undefined })) {
        rows.push(row);
      }
      return rows;
    });
  }

  // ---- topology cache: one partition per subscription; rows c|<cluster>, s|<subnet>, and a marker ----

  async replaceTopology(subscriptionId: string, entries: { clusters: CachedCluster[]; subnets: CachedSubnet[] }, at: Date): Promise<void> {
    const pk = topologyPartition(subscriptionId);
    const rows = [
      ...entries.clusters.map((c) => ({ partitionKey: pk, rowKey: `c|${tableKey(c.cluster.id)}`, ...jsonProperties('entry', c) })),
      ...entries.subnets.map((s) => ({ partitionKey: pk, rowKey: `s|${tableKey(s.id)}`, ...jsonProperties('entry', s) })),
      { partitionKey: pk, rowKey: 'marker', at: at.toISOString() },
    ];
    const keep = new Set(rows.map((r) => r.rowKey));
    const existing = await this.listRows('topology', 'listEntities(topology)', odata`PartitionKey eq ${pk}`);
    const stale = existing.filter((r) => !keep.has(String(r.rowKey)));
    // Entity group transactions: up to 100 operations on one partition each.
    const actions: Array<['upsert', Record<string, unknown> & { partitionKey: string; rowKey: string }, 'Replace'] | ['delete', { partitionKey: string; rowKey: string }]> = [
      ...rows.map((r) => ['upsert', r, 'Replace'] as ['upsert', typeof r, 'Replace']),
      ...stale.map((r) => ['delete', { partitionKey: pk, rowKey: String(r.rowKey) }] as ['delete', { partitionKey: string; rowKey: string }]),
    ];
    for (let i = 0; i < actions.length; i += 100) {
      const batch = actions.slice(i, i + 100);
      await this.call('topology', 'submitTransaction(topology)', (c) => c.submitTransaction(batch as never));
    }
  }

  async hasTopology(subscriptionId: string): Promise<boolean> {
    // Once a sweep has filled a subscription's topology it stays filled: remember the yes.
    const key = topologyPartition(subscriptionId);
    if (this.knownTopologies.has(key)) return true;
    const found = !!(await this.getRow('topology', key, 'marker'));
    if (found) this.knownTopologies.add(key);
    return found;
  }

  async getCachedClusters(ids: string[]): Promise<Map<string, CachedCluster>> {
    return this.getCachedEntries(ids, 'c', cachedClusterSchema);
  }

  async getCachedSubnets(ids: string[]): Promise<Map<string, CachedSubnet>> {
    return this.getCachedEntries(ids, 's', cachedSubnetSchema);
  }

  private async getCachedEntries<T>(ids: string[], kind: 'c' | 's', schema: z.ZodType<T, z.ZodTypeDef, unknown>): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    await Promise.all(
      [...new Set(ids.map((id) => id.toLowerCase()))].map(async (id) => {
        const row = await this.getRow('topology', topologyPartition(subscriptionOfId(id)), `${kind}|${tableKey(id)}`);
        // An entry that does not read back is a cache miss: the caller reads the subscription instead.
        const entry = row ? schema.safeParse(readJson(row, 'entry')) : undefined;
        if (entry?.success) out.set(id, entry.data);
      }),
    );
    return out;
  }

  async putCachedCluster(entry: CachedCluster): Promise<void> {
    const row = { partitionKey: topologyPartition(subscriptionOfId(entry.cluster.id)), rowKey: `c|${tableKey(entry.cluster.id)}`, ...jsonProperties('entry', entry) };
    await this.call('topology', 'upsertEntity(topology cluster)', (c) => c.upsertEntity(row, 'Replace'));
  }

  async putCachedSubnets(entries: CachedSubnet[]): Promise<void> {
    await Promise.all(
      entries.map((e) => {
        const row = { partitionKey: topologyPartition(subscriptionOfId(e.id)), rowKey: `s|${tableKey(e.id)}`, ...jsonProperties('entry', e) };
        return this.call('topology', 'upsertEntity(topology subnet)', (c) => c.upsertEntity(row, 'Replace'));
      }),
    );
  }

  async removeCachedCluster(id: string): Promise<void> {
    await this.call('topology', 'deleteEntity(topology cluster)', async (c) => {
      try {
        await c.deleteEntity(topologyPartition(subscriptionOfId(id)), `c|${tableKey(id)}`);
      } catch (e) {
        if (statusOf(e) !== 404) throw e;
      }
    });
  }

  // ---- the event ledger (Event Grid delivers at least once, sometimes several copies at once) ----

  // One row per event id: state `processing` while a delivery works on it, `done` afterwards. Every
  // change is conditional (insert-if-absent, or on the row's ETag), so concurrent deliveries of one
  // id never both process it. Rows written before the ledger had states count as `done`.
  async claimEvent(eventId: string, at: Date, window: { doneSince: Date; leaseSince: Date }): Promise<EventClaim | 'done' | 'processing'> {
    const client = await this.table('events');
    const entity = { partitionKey: 'event', rowKey: tableKey(eventId), eventId, state: 'processing', at: at.toISOString() };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const res = await client.createEntity(entity);
        return { eventId, etag: res.etag ?? '' };
      } catch (e) {
        if (statusOf(e) !== 409) throw new StoreError(client.tableName, 'createEntity(event claim)', e);
      }
      const row = await this.getRow('events', entity.partitionKey, entity.rowKey);
      if (!row) continue; // released between our insert and our read: try the insert again
      const rowAt = Date.parse(str(row.at) ?? '');
      const state = str(row.state) === 'processing' ? 'processing' : 'done';
      const since = state === 'processing' ? window.leaseSince : window.doneSince;
      if (!Number.isNaN(rowAt) && rowAt >= since.getTime()) return state;
      // Done long ago (outside the duplicate window) or claimed by a delivery that never finished.
      try {
        const res = await client.updateEntity(entity, 'Replace', { etag: row.etag });
        return { eventId, etag: res.etag ?? '' };
      } catch (e) {
        const status = statusOf(e);
        if (status !== 412 && status !== 404) throw new StoreError(client.tableName, 'updateEntity(event claim)', e);
      }
    }
    throw new StoreError(client.tableName, 'claimEvent', new Error(`the ledger row of event ${eventId} kept changing; giving up after 5 attempts`));
  }

  async completeEvent(claim: EventClaim, at: Date): Promise<void> {
    const entity = { partitionKey: 'event', rowKey: tableKey(claim.eventId), eventId: claim.eventId, state: 'done', at: at.toISOString() };
    await this.call('events', 'updateEntity(event done)', async (c) => {
      try {
        await c.updateEntity(entity, 'Replace', { etag: claim.etag });
      } catch (e) {
        // 412/404: the claim was taken over after its lease ran out; that delivery records the outcome.
        if (statusOf(e) !== 412 && statusOf(e) !== 404) throw e;
      }
    });
  }

  async releaseEvent(claim: EventClaim): Promise<void> {
    await this.call('events', 'deleteEntity(event claim)', async (c) => {
      try {
        await c.deleteEntity('event', tableKey(claim.eventId), { etag: claim.etag });
      } catch (e) {
        if (statusOf(e) !== 412 && statusOf(e) !== 404) throw e;
      }
    });
  }

  // ---- automatic fixes per finding (the flap guard counts them) ----

  async recordRemediation(control: ControlId, targetId: string, at: Date, changedBy?: string): Promise<void> {
    const entity = defined({
      partitionKey: `${control}|${tableKey(targetId)}`,
      rowKey: auditRowKey(at.getTime()),
      at: at.toISOString(),
      changedBy,
    });
    await this.call('remediations', 'createEntity(remediation)', (c) => c.createEntity(entity));
  }

  async recentRemediations(control: ControlId, targetId: string, since: Date): Promise<Array<{ at: string; changedBy?: string }>> {
    const filter = odata`PartitionKey eq ${`${control}|${tableKey(targetId)}`} and at ge ${since.toISOString()}`;
    const rows = await this.listRows('remediations', 'listEntities(remediations)', filter);
    return rows
      .map((r) => ({ at: str(r.at) ?? '', changedBy: str(r.changedBy) }))
      .sort((a, b) => b.at.localeCompare(a.at));
  }

  // ---- baselines ----

  async getBaseline(clusterId: string): Promise<string[] | undefined> {
    const row = await this.getRow('baselines', BASELINE_PARTITION, tableKey(clusterId));
    return row ? parseStored(baselineSchema, readJson(row, 'ranges'), unreadable('baselines', row)) : undefined;
  }

  async putBaseline(clusterId: string, ranges: string[], at: Date): Promise<void> {
    const entity = {
      partitionKey: BASELINE_PARTITION,
      rowKey: tableKey(clusterId),
      clusterId,
      at: at.toISOString(),
      ...jsonProperties('ranges', ranges),
    };
    await this.call('baselines', 'upsertEntity(baseline)', (c) => c.upsertEntity(entity, 'Replace'));
  }

  // ---- findings ----

  async recordFinding(finding: Finding, at: Date): Promise<StoredFinding | undefined> {
    const keys = findingKeys(finding.control, finding.resourceId, finding.targetId);
    const previousRow = await this.getRow('findings', keys.partitionKey, keys.rowKey);
    const previous = previousRow ? findingFromRow(previousRow) : undefined;
    const atIso = at.toISOString();
    const driftSince =
      finding.status !== 'drift' ? undefined : previous?.status === 'drift' ? (previous.driftSince ?? previous.at) : atIso;
    const entity = defined({
      ...keys,
      control: finding.control,
      resourceId: finding.resourceId,
      targetId: finding.targetId,
      status: finding.status,
      action: finding.action,
      detail: finding.detail,
      at: atIso,
      driftSince,
    });
    await this.call('findings', 'upsertEntity(finding)', (c) => c.upsertEntity(entity, 'Replace'));
    return previous;
  }

  /**
   * Records a sweep's findings in bulk: one range read and 100-row transactions per control, instead
   * of a read and a write per finding. driftSince is kept exactly as recordFinding keeps it.
   */
  async recordFindings(findings: Finding[], at: Date, known?: KnownFindings): Promise<void> {
    const atIso = at.toISOString();
    const byControl = new Map<string, Array<ReturnType<typeof findingKeys> & { finding: Finding }>>();
    for (const f of findings) {
      const keys = findingKeys(f.control, f.resourceId, f.targetId);
      if (!byControl.has(keys.partitionKey)) byControl.set(keys.partitionKey, []);
      byControl.get(keys.partitionKey)!.push({ ...keys, finding: f });
    }
    // One partition per control: the partitions are written side by side, not one after another.
    await Promise.all([...byControl].map(([partitionKey, rows]) => this.recordFindingsOfPartition(partitionKey, rows, atIso, known)));
  }

  private async recordFindingsOfPartition(
    partitionKey: string,
    rows: Array<ReturnType<typeof findingKeys> & { finding: Finding }>,
    atIso: string,
    known?: KnownFindings,
  ): Promise<void> {
    const ranges = rows.map((r) => known?.ranges.get(`${partitionKey}|${r.finding.resourceId.toLowerCase()}`));
    let previous: Map<string, StoredFinding>;
    if (ranges.every((r) => r !== undefined)) {
      // Read ahead by findingsOf: every finding here falls in a range already read.
      previous = new Map(ranges.flatMap((r) => [...r!]));
    } else {
      const sorted = rows.map((r) => r.rowKey).sort(compare);
      const filter = odata`PartitionKey eq ${partitionKey} and RowKey ge ${sorted[0]} and RowKey le ${sorted[sorted.length - 1]}`;
      previous = new Map((await this.listRows('findings', 'listEntities(findings range)', filter)).map((r) => [String(r.rowKey), findingFromRow(r)]));
    }
    const latest = new Map<string, Record<string, unknown> & { partitionKey: string; rowKey: string }>();
    for (const { rowKey, finding } of rows) {
      const before = previous.get(rowKey);
      const driftSince = finding.status !== 'drift' ? undefined : before?.status === 'drift' ? (before.driftSince ?? before.at) : atIso;
      latest.set(rowKey, defined({ partitionKey, rowKey, ...finding, at: atIso, driftSince }));
    }
    const actions = [...latest.values()].map((e) => ['upsert', e, 'Replace'] as const);
    for (let i = 0; i < actions.length; i += 100) {
      await this.call('findings', 'submitTransaction(findings)', (c) => c.submitTransaction(actions.slice(i, i + 100) as never));
    }
  }

  /**
   * The stored findings of a few clusters under some controls (one range read per control and
   * cluster, all at once), for recordFindings to use instead of reading them after the run.
   */
  async findingsOf(controls: readonly ControlId[], clusterIds: string[]): Promise<KnownFindings> {
    const ranges = new Map<string, Map<string, StoredFinding>>();
    await Promise.all(
      controls.flatMap((control) =>
        [...new Set(clusterIds.map((id) => id.toLowerCase()))].map(async (clusterId) => {
          // Row keys are `<cluster>|<target>`; "}" is the character after "|", so this is the cluster's range.
          const filter = odata`PartitionKey eq ${control} and RowKey gt ${`${tableKey(clusterId)}|`} and RowKey lt ${`${tableKey(clusterId)}}`}`;
          const rows = await this.listRows('findings', 'listEntities(findings of a cluster)', filter);
          ranges.set(`${control}|${clusterId}`, new Map(rows.map((r) => [String(r.rowKey), findingFromRow(r)])));
        }),
      ),
    );
    return { ranges };
  }

  async listFindings(): Promise<StoredFinding[]> {
    const rows = await this.listRows('findings', 'listEntities(findings)');
    return rows.map(findingFromRow);
  }

  // ---- approvals ----

  async requestApproval(
    input: Omit<ApprovalRecord, 'id' | 'state' | 'etag'>,
  ): Promise<{ created: boolean; approval: ApprovalRecord }> {
    // A new request has not been decided, whatever the caller copied over.
    const { decidedAt: _decidedAt, decidedBy: _decidedBy, ...rest } = input;
    const fresh: ApprovalRecord = { ...rest, id: approvalIdFor(input.control, input.targetId), state: 'pending' };
    const keys = approvalKeys(input.control, input.targetId);
    const entity = approvalEntity(fresh);
    const client = await this.table('approvals');

    // Insert-if-absent, else take over a row that is no longer pending. Every write is conditional,
    // so of two concurrent callers exactly one creates; the loop only repeats when the row changed
    // under us, and then the next read sees the winner's pending row.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const res = await client.createEntity(entity);
        return { created: true, approval: { ...fresh, etag: res.etag } };
      } catch (e) {
        if (statusOf(e) !== 409) throw new StoreError(client.tableName, 'createEntity(approval)', e);
      }
      const existingRow = await this.getRow('approvals', keys.partitionKey, keys.rowKey);
      if (!existingRow) continue; // deleted between our insert and our read
      const existing = approvalFromRow(existingRow);
      if (isLivePending(existing, input.requestedAt)) return { created: false, approval: existing };
      try {
        const res = await client.updateEntity(entity, 'Replace', { etag: existingRow.etag });
        return { created: true, approval: { ...fresh, etag: res.etag } };
      } catch (e) {
        const status = statusOf(e);
        if (status !== 412 && status !== 404) throw new StoreError(client.tableName, 'updateEntity(approval)', e);
      }
    }
    throw new StoreError(
      client.tableName,
      'requestApproval',
      new Error(`the approval row for ${fresh.id} kept changing between reads; giving up after 5 attempts`),
    );
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const bar = id.indexOf('|');
    if (bar <= 0) return undefined;
    const keys = approvalKeys(id.slice(0, bar), id.slice(bar + 1));
    const row = await this.getRow('approvals', keys.partitionKey, keys.rowKey);
    return row ? approvalFromRow(row) : undefined;
  }

  async listApprovals(state?: ApprovalState): Promise<ApprovalRecord[]> {
    const rows = await this.listRows('approvals', 'listEntities(approvals)', state ? odata`state eq ${state}` : undefined);
    return rows.map(approvalFromRow);
  }

  /**
   * Replaces the row only if its ETag is still `record.etag`. On success `record.etag` is set to
   * the new ETag, so the same object can be updated again.
   */
  async updateApproval(record: ApprovalRecord): Promise<boolean> {
    if (!record.etag) {
      throw new Error(`updateApproval(${record.id}): the record has no etag; read it with getApproval or listApprovals first.`);
    }
    const client = await this.table('approvals');
    const entity = approvalEntity({ ...record, id: approvalIdFor(record.control, record.targetId) });
    try {
      const res = await client.updateEntity(entity, 'Replace', { etag: record.etag });
      record.etag = res.etag;
      return true;
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || isMissingRow(e)) return false;
      throw new StoreError(client.tableName, 'updateEntity(approval)', e);
    }
  }

  // ---- audit ----

  async audit(entry: AuditEntry): Promise<void> {
    const atMs = Date.parse(entry.at);
    if (Number.isNaN(atMs)) throw new Error(`audit: "${entry.at}" is not a timestamp.`);
    const entity = defined({
      partitionKey: new Date(atMs).toISOString().slice(0, 10),
      rowKey: auditRowKey(atMs),
      at: entry.at,
      control: entry.control,
      clusterId: entry.clusterId,
      targetId: entry.targetId,
      event: entry.event,
      mode: entry.mode,
      actor: entry.actor,
      detail: entry.detail,
      intent: entry.intent,
      runId: entry.runId,
      ...jsonProperties('before', entry.before),
      ...jsonProperties('after', entry.after),
      ...jsonProperties('change', entry.change),
    });
    await this.call('audit', 'createEntity(audit)', (c) => c.createEntity(entity));
  }

  // One range query over the day partitions since `since` (an audit day is one partition), read in
  // full because an outcome row can sit in a later day than its intent.
  async openIntents(since: Date, runId?: string): Promise<AuditEntry[]> {
    const fromDay = since.toISOString().slice(0, 10);
    const rows = await this.listRows('audit', 'listEntities(open intents)', odata`PartitionKey ge ${fromDay}`);
    const completed = new Set<string>();
    const intents: Row[] = [];
    for (const row of rows) {
      const ids = str(row.intent);
      if (runId !== undefined && row.event === 'remediated' && row.runId === runId) intents.push(row);
      if (!ids) continue;
      if (row.event === 'intent') intents.push(row);
      else for (const id of ids.split(',')) completed.add(id);
    }
    const sinceIso = since.toISOString();
    return intents
      .filter((r) => (r.event !== 'intent' || !completed.has(String(r.intent))) && String(r.at) >= sinceIso)
      .map(auditEntryFromRow)
      .sort((a, b) => a.at.localeCompare(b.at));
  }

  /** Every audit entry, newest first. */
  async listAudit(): Promise<AuditEntry[]> {
    const rows = await this.listRows('audit', 'listEntities(audit)');
    // Days descending; inside a day the row keys already sort newest first.
    rows.sort((a, b) =>
      a.partitionKey === b.partitionKey
        ? compare(a.rowKey ?? '', b.rowKey ?? '')
        : compare(b.partitionKey ?? '', a.partitionKey ?? ''),
    );
    return rows.map(auditEntryFromRow);
  }
}

function auditEntryFromRow(row: Row): AuditEntry {
  return parseStored(
    auditEntrySchema,
    defined({
      at: row.at,
      control: row.control,
      clusterId: row.clusterId,
      targetId: row.targetId,
      event: row.event,
      mode: row.mode,
      before: readJson(row, 'before'),
      after: readJson(row, 'after'),
      actor: row.actor,
      detail: row.detail,
      intent: row.intent,
      runId: row.runId,
      change: readJson(row, 'change'),
    }),
    unreadable('audit', row),
  );
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A pending row that has passed its expiry no longer blocks a new request. */
function isLivePending(existing: ApprovalRecord, now: string): boolean {
  if (existing.state !== 'pending') return false;
  const expires = Date.parse(existing.expiresAt);
  const current = Date.parse(now);
  return Number.isNaN(expires) || Number.isNaN(current) || expires > current;
}

/** Names a row that does not read back, for the error. */
const unreadable = (table: string, row: Row) => `Unreadable ${table} row ${row.partitionKey ?? ''}/${row.rowKey ?? ''}`;

const baselineSchema = z.array(z.string()).optional();

function findingFromRow(row: Row): StoredFinding {
  return parseStored(
    storedFindingSchema,
    defined({
      control: row.control,
      resourceId: row.resourceId,
      targetId: row.targetId,
      status: row.status,
      action: row.action,
      detail: row.detail ?? '',
      at: row.at,
      driftSince: row.driftSince,
    }),
    unreadable('findings', row),
  );
}

function approvalEntity(record: ApprovalRecord) {
  return defined({
    ...approvalKeys(record.control, record.targetId),
    id: record.id,
    control: record.control,
    clusterId: record.clusterId,
    targetId: record.targetId,
    state: record.state,
    detail: record.detail,
    reason: record.reason,
    requestedAt: record.requestedAt,
    expiresAt: record.expiresAt,
    decidedBy: record.decidedBy,
    decidedAt: record.decidedAt,
    changedBy: record.changedBy,
    delivered: record.delivered,
    ...jsonProperties('change', record.change),
  });
}

function approvalFromRow(row: Row): ApprovalRecord {
  return parseStored(
    approvalRecordSchema,
    defined({
      id: row.id,
      control: row.control,
      clusterId: row.clusterId,
      targetId: row.targetId,
      state: row.state,
      detail: row.detail ?? '',
      change: readJson(row, 'change'),
      reason: row.reason ?? '',
      requestedAt: row.requestedAt,
      expiresAt: row.expiresAt,
      decidedBy: row.decidedBy,
      decidedAt: row.decidedAt,
      changedBy: row.changedBy,
      delivered: row.delivered,
      etag: row.etag,
    }),
    unreadable('approvals', row),
  );
}

export interface StoreFromEnvironmentOptions extends TableStoreOptions {
  /** Used for identity-based storage instead of the one chosen from the settings. */
  credential?: TokenCredential;
}

/**
 * The store the settings point at, or undefined when no storage is configured:
 * `AzureWebJobsStorage` (a connection string), else the identity-based settings of the Functions
 * host (`AzureWebJobsStorage__tableServiceUri`, `__accountName`, or a blob/queue service URI of the
 * same account; `__credential=managedidentity` and `__clientId` choose the identity).
 */
export function storeFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  options: StoreFromEnvironmentOptions = {},
): TableStateStore | undefined {
  const connectionString = storageConnectionString(env);
  if (connectionString) return TableStateStore.fromConnectionString(connectionString, options);
  const tableUri = storageServiceUrl(env, 'table');
  if (!tableUri) return undefined;
  return TableStateStore.fromAccountUrl(tableUri, options.credential ?? storageCredentialFromEnvironment(env), options);
}
