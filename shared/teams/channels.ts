// Teams state in Azure Tables, next to the engine's store (same account, own tables):
//   <prefix>channels    subscribed channels (their ConversationReference)
//   <prefix>cards       per delivered card: the activity id in each channel, and each approval's nonce
//   <prefix>exemptions  "Exempt for 7 days" decisions, with their expiry
//   <prefix>digests     one snapshot per daily digest (for "since the previous digest" and the 14-day chart)
import { randomBytes } from 'node:crypto';
import { isRestError } from '@azure/core-rest-pipeline';
import { TableClient, type TableEntityResult } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import { storageConnectionString, storageCredentialFromEnvironment, storageServiceUrl, usesPlainHttp } from '../store/storageAccount';
import type { ConversationReference } from 'botbuilder';
import { DEFAULT_TABLE_PREFIX, ensureTable, tableKey } from '../store/tables';
import { tableClientOptions } from '../store/clientOptions';
import type { ControlId } from '../types';
import type { ControlCounts } from './cards';

export const TEAMS_TABLE_KINDS = ['channels', 'cards', 'exemptions', 'digests'] as const;
type TeamsTableKind = (typeof TEAMS_TABLE_KINDS)[number];

export interface SubscribedChannel {
  /** The channel's conversation id (a thread suffix `;messageid=` removed): the row key. */
  channelId: string;
  reference: Partial<ConversationReference>;
  teamName?: string;
  channelName?: string;
  subscribedBy?: string;
  subscribedAt: string;
}

export interface PostedCard {
  channelId: string;
  activityId: string;
  reference: Partial<ConversationReference>;
}

export interface Exemption {
  control: ControlId;
  targetId: string;
  until: string;
  by: string;
  at: string;
}

export interface DigestSnapshot {
  date: string;
  at: string;
  drift: number;
  remediated: number;
  counts: Partial<Record<ControlId, ControlCounts>>;
  openDrift: string[];
}

const statusOf = (e: unknown) => (isRestError(e) ? e.statusCode : undefined);
type Row = TableEntityResult<Record<string, unknown>>;

/** The channel a conversation id belongs to: posts to a thread id would land in that thread. */
export function channelOf(conversationId: string): string {
  return conversationId.split(';messageid=')[0];
}


export class TeamsTables {
  private readonly clients: Record<TeamsTableKind, TableClient>;

  constructor(makeClient: (tableName: string) => TableClient, prefix = DEFAULT_TABLE_PREFIX) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,40}$/.test(prefix)) throw new Error(`Table prefix "${prefix}" must be letters and digits, starting with a letter.`);
    this.clients = Object.fromEntries(TEAMS_TABLE_KINDS.map((k) => [k, makeClient(`${prefix}${k}`)])) as Record<TeamsTableKind, TableClient>;
  }

  static fromConnectionString(connectionString: string, prefix?: string): TeamsTables {
    const allowInsecureConnection = usesPlainHttp(connectionString, 'table');
    return new TeamsTables((name) => TableClient.fromConnectionString(connectionString, name, tableClientOptions({ allowInsecureConnection })), prefix);
  }

  static fromAccountUrl(accountUrl: string, credential: TokenCredential, prefix?: string): TeamsTables {
    return new TeamsTables((name) => new TableClient(accountUrl.replace(/\/+$/, ''), name, credential, tableClientOptions()), prefix);
  }

  private table(kind: TeamsTableKind): Promise<TableClient> {
    return ensureTable(this.clients[kind]);
  }

  private async get(kind: TeamsTableKind, pk: string, rk: string): Promise<Row | undefined> {
    const client = await this.table(kind);
    try {
      return await client.getEntity<Record<string, unknown>>(pk, rk);
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  private async list(kind: TeamsTableKind, partitionKey?: string): Promise<Row[]> {
    const client = await this.table(kind);
    const rows: Row[] = [];
    const filter = partitionKey ? `PartitionKey eq '${partitionKey.replace(/'/g, "''")}'` : undefined;
    for await (const row of client.listEntities<Record<string, unknown>>({ queryOptions: filter ? { filter } : undefined })) rows.push(row);
    return rows;
  }

  // ---- channels ----

  /** Stores (or refreshes) a channel's reference; returns true when it was not subscribed before. */
  async subscribe(channel: Omit<SubscribedChannel, 'channelId'> & { channelId?: string }): Promise<boolean> {
    const channelId = channelOf(channel.channelId ?? channel.reference.conversation?.id ?? '');
    if (!channelId) throw new Error('subscribe: the conversation reference has no conversation id.');
    const reference = { ...channel.reference, conversation: { ...channel.reference.conversation!, id: channelId } };
    const before = await this.get('channels', 'channel', tableKey(channelId));
    const client = await this.table('channels');
    await client.upsertEntity(
      clean({
        partitionKey: 'channel',
        rowKey: tableKey(channelId),
        channelId,
        referenceJson: JSON.stringify(reference),
        teamName: channel.teamName,
        channelName: channel.channelName,
        subscribedBy: channel.subscribedBy,
        subscribedAt: before ? String(before.subscribedAt) : channel.subscribedAt,
      }),
      'Replace',
    );
    return !before;
  }

  /** Returns true when the channel was subscribed. */
  async unsubscribe(conversationId: string): Promise<boolean> {
    const client = await this.table('channels');
    try {
      await client.deleteEntity('channel', tableKey(channelOf(conversationId)));
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  async listChannels(): Promise<SubscribedChannel[]> {
    const rows = await this.list('channels', 'channel');
    return rows.map((r) =>
      clean({
        channelId: String(r.channelId),
        reference: JSON.parse(String(r.referenceJson)) as Partial<ConversationReference>,
        teamName: str(r.teamName),
        channelName: str(r.channelName),
        subscribedBy: str(r.subscribedBy),
        subscribedAt: String(r.subscribedAt),
      }),
    );
  }

  // ---- delivered cards ----

  /**
   * The nonce of the card for this approval request: created once per request (approval id +
   * requestedAt), so retries and every channel show the same nonce, and a card of an earlier request
   * for the same finding (same approval id) no longer matches.
   */
  async nonceFor(approvalId: string, requestedAt: string): Promise<string> {
    const pk = tableKey(approvalId);
    const client = await this.table('cards');
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.get('cards', pk, 'request');
      if (row && row.requestedAt === requestedAt) return String(row.nonce);
      const entity = { partitionKey: pk, rowKey: 'request', requestedAt, nonce: randomBytes(18).toString('base64url') };
      try {
        if (row) await client.updateEntity(entity, 'Replace', { etag: row.etag });
        else await client.createEntity(entity);
        return entity.nonce;
      } catch (e) {
        if (statusOf(e) !== 409 && statusOf(e) !== 412) throw e;
      }
    }
    throw new Error(`nonceFor(${approvalId}): the card row kept changing.`);
  }

  /** The nonce of the current request of an approval (undefined: no card was ever issued). */
  async currentNonce(approvalId: string): Promise<{ nonce: string; requestedAt: string } | undefined> {
    const row = await this.get('cards', tableKey(approvalId), 'request');
    return row ? { nonce: String(row.nonce), requestedAt: String(row.requestedAt) } : undefined;
  }

  async recordPosted(deliveryKey: string, posted: PostedCard): Promise<void> {
    const client = await this.table('cards');
    await client.upsertEntity(
      {
        partitionKey: tableKey(deliveryKey),
        rowKey: tableKey(posted.channelId),
        channelId: posted.channelId,
        activityId: posted.activityId,
        referenceJson: JSON.stringify(posted.reference),
      },
      'Replace',
    );
  }

  async listPosted(deliveryKey: string): Promise<PostedCard[]> {
    const rows = await this.list('cards', tableKey(deliveryKey));
    return rows
      .filter((r) => r.rowKey !== 'request')
      .map((r) => ({
        channelId: String(r.channelId),
        activityId: String(r.activityId),
        reference: JSON.parse(String(r.referenceJson)) as Partial<ConversationReference>,
      }));
  }

  // ---- exemptions ----

  async putExemption(exemption: Exemption): Promise<void> {
    const client = await this.table('exemptions');
    await client.upsertEntity({ partitionKey: exemption.control, rowKey: tableKey(exemption.targetId), ...exemption }, 'Replace');
  }

  /** The exemption of a control on a target that is still in force at `now`, if any. */
  async activeExemption(control: ControlId, targetId: string, now: Date): Promise<Exemption | undefined> {
    const row = await this.get('exemptions', control, tableKey(targetId));
    if (!row || Date.parse(String(row.until)) <= now.getTime()) return undefined;
    return exemptionFromRow(row);
  }

  async listExemptions(now: Date): Promise<Exemption[]> {
    const rows = await this.list('exemptions');
    return rows.map(exemptionFromRow).filter((e) => Date.parse(e.until) > now.getTime());
  }

  // ---- digest snapshots ----

  async putDigestSnapshot(snapshot: DigestSnapshot): Promise<void> {
    const client = await this.table('digests');
    await client.upsertEntity(
      {
        partitionKey: 'digest',
        rowKey: snapshot.date,
        date: snapshot.date,
        at: snapshot.at,
        drift: snapshot.drift,
        remediated: snapshot.remediated,
        countsJson: JSON.stringify(snapshot.counts),
        openDriftJson: JSON.stringify(snapshot.openDrift),
      },
      'Replace',
    );
  }

  /** Every snapshot, oldest first. */
  async listDigestSnapshots(): Promise<DigestSnapshot[]> {
    const rows = await this.list('digests', 'digest');
    return rows
      .map((r) => ({
        date: String(r.date),
        at: String(r.at),
        drift: Number(r.drift ?? 0),
        remediated: Number(r.remediated ?? 0),
        counts: JSON.parse(String(r.countsJson ?? '{}')) as DigestSnapshot['counts'],
        openDrift: JSON.parse(String(r.openDriftJson ?? '[]')) as string[],
      }))
      .sort((a, b) => a.date.localeCompare(b.date));
  }
}

function exemptionFromRow(row: Row): Exemption {
  return { control: row.control as ControlId, targetId: String(row.targetId), until: String(row.until), by: String(row.by), at: String(row.at) };
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
function clean<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The Teams tables in the storage account the settings point at (same rules as storeFromEnvironment). */
export function teamsTablesFromEnvironment(env: NodeJS.ProcessEnv = process.env, prefix?: string): TeamsTables | undefined {
  const connection = storageConnectionString(env);
  if (connection) return TeamsTables.fromConnectionString(connection, prefix);
  const url = storageServiceUrl(env, 'table');
  return url ? TeamsTables.fromAccountUrl(url, storageCredentialFromEnvironment(env), prefix) : undefined;
}
