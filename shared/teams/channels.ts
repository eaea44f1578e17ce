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
import { z } from 'zod';
import { controlIdSchema, parseStored } from '../store/schemas';
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
    return rows.map((r) => {
      const what = `Unreadable channels row ${r.rowKey ?? ''}`;
      const row = parseStored(channelRowSchema, r, what);
      return clean({
        channelId: row.channelId,
        reference: referenceOf(row.referenceJson, what),
        teamName: row.teamName,
        channelName: row.channelName,
        subscribedBy: row.subscribedBy,
        subscribedAt: row.subscribedAt,
      });
    });
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
      if (row && row.requestedAt === requestedAt) return parseStored(cardRequestRowSchema, row, `Unreadable cards row ${pk}/request`).nonce;
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
    return row ? parseStored(cardRequestRowSchema, row, `Unreadable cards row ${tableKey(approvalId)}/request`) : undefined;
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
      .map((r) => {
        const what = `Unreadable cards row ${r.partitionKey ?? ''}/${r.rowKey ?? ''}`;
        const row = parseStored(postedRowSchema, r, what);
        return { channelId: row.channelId, activityId: row.activityId, reference: referenceOf(row.referenceJson, what) };
      });
  }

  // ---- exemptions ----

  async putExemption(exemption: Exemption): Promise<void> {
    const client = await this.table('exemptions');
    await client.upsertEntity({ partitionKey: exemption.control, rowKey: tableKey(exemption.targetId), ...exemption }, 'Replace');
  }

  /** The exemption of a control on a target that is still in force at `now`, if any. */
  async activeExemption(control: ControlId, targetId: string, now: Date): Promise<Exemption | undefined> {
    const row = await this.get('exemptions', control, tableKey(targetId));
    if (!row) return undefined;
    const exemption = exemptionFromRow(row);
    return Date.parse(exemption.until) > now.getTime() ? exemption : undefined;
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
      .map((r) => {
        const what = `Unreadable digests row ${r.rowKey ?? ''}`;
        const row = parseStored(digestRowSchema, r, what);
        return {
          date: row.date,
          at: row.at,
          drift: row.drift,
          remediated: row.remediated,
          counts: parseStored(digestCountsSchema, JSON.parse(row.countsJson), what),
          openDrift: parseStored(z.array(z.string()), JSON.parse(row.openDriftJson), what),
        };
      })
      .sort((a, b) => a.date.localeCompare(b.date));
  }
}

// What the rows hold, checked when read (see shared/store/schemas.ts).
const channelRowSchema = z.object({
  channelId: z.string(),
  referenceJson: z.string(),
  teamName: z.string().optional(),
  channelName: z.string().optional(),
  subscribedBy: z.string().optional(),
  subscribedAt: z.string(),
});
const cardRequestRowSchema = z.object({ nonce: z.string(), requestedAt: z.string() });
const postedRowSchema = z.object({ channelId: z.string(), activityId: z.string(), referenceJson: z.string() });
const exemptionRowSchema = z.object({ control: controlIdSchema, targetId: z.string(), until: z.string(), by: z.string(), at: z.string() });
const digestRowSchema = z.object({
  date: z.string(),
  at: z.string(),
  drift: z.number().default(0),
  remediated: z.number().default(0),
  countsJson: z.string().default('{}'),
  openDriftJson: z.string().default('[]'),
});
const digestCountsSchema: z.ZodType<DigestSnapshot['counts'], z.ZodTypeDef, unknown> = z.record(controlIdSchema, z.record(z.string(), z.number())) as z.ZodType<
  DigestSnapshot['counts'],
  z.ZodTypeDef,
  unknown
>; // the columns are the digest's own (cards.ts DigestColumn), counted when it was built
/** What the connector needs to post there again: the service URL and the conversation. */
const referenceSchema = z
  .object({ serviceUrl: z.string(), conversation: z.object({ id: z.string() }).passthrough() })
  .passthrough();

function referenceOf(json: string, what: string): Partial<ConversationReference> {
  // Checked for what posting needs; the rest is as Teams sent it in the activity it was taken from.
  return parseStored(referenceSchema, JSON.parse(json), what) as unknown as Partial<ConversationReference>;
}

function exemptionFromRow(row: Row): Exemption {
  return parseStored(exemptionRowSchema, row, `Unreadable exemptions row ${row.partitionKey ?? ''}/${row.rowKey ?? ''}`);
}
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
