// Tracks one daily sweep run in Azure Tables: which subscriptions it covers, which have finished (and
// their partial reports), and whether the digest has been queued. One partition per run:
//   run                     the run itself (expected count, state, who completes it, digest time)
//   sub|<subscription>      one per subscription: pending → done | failed (the commit point)
//   report|<sub>|<nnnn>     the subscription's partial report, as JSON split over rows and properties
// The run row is only ever changed with If-Match on its ETag, so exactly one finisher completes a run.
import { randomBytes } from 'node:crypto';
import { isRestError } from '@azure/core-rest-pipeline';
import { TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { z } from 'zod';
import { ensureTable, tableKey } from '../store/tables';
import { parseStored, runReportSchema } from '../store/schemas';
import { tableClientOptions } from '../store/clientOptions';
import { CONTROL_IDS, summarize, type Finding, type RunReport } from '../types';
import { storageCredentialFromEnvironment, storageServiceUrl, usesPlainHttp } from '../store/storageAccount';

export const DEFAULT_RUNS_TABLE = 'netguardsweepruns';

const RUN_STATES = ['open', 'completing', 'completed'] as const;
const SUBSCRIPTION_STATES = ['pending', 'done', 'failed'] as const;
export type RunState = (typeof RUN_STATES)[number];
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

export interface SweepRun {
  runId: string;
  subscriptions: string[];
  startedAt: string;
  state: RunState;
  /** The queue message (or invocation) that won the right to complete the run. */
  completedBy?: string;
  /** The digest's time, fixed when the run is claimed so a repeated enqueue carries the same key. */
  digestAt?: string;
  completedAt?: string;
  etag: string;
}

export interface SubscriptionResult {
  subscriptionId: string;
  state: SubscriptionState;
  /** Queue deliveries that worked on it so far. */
  attempts: number;
  /** Why it failed (failed only). */
  detail?: string;
  finishedAt?: string;
  /** Clusters judged (done only). */
  resources: number;
}

export class RunStoreError extends Error {
  constructor(operation: string, cause: unknown) {
    const status = isRestError(cause) ? ` (${cause.statusCode ?? ''} ${cause.code ?? ''})` : '';
    super(`Azure Tables: ${operation} on the sweep runs failed${status}: ${cause instanceof Error ? cause.message.slice(0, 300) : String(cause)}`, { cause });
    this.name = 'RunStoreError';
  }
}

const statusOf = (e: unknown) => (isRestError(e) ? e.statusCode : undefined);
type Row = TableEntityResult<Record<string, unknown>>;

// An entity holds at most 1 MiB and a string property 64 KiB (32K UTF-16 characters): a partial
// report is cut into 30,000-character properties, at most 12 per row (720 KB), over as many rows as needed.
const CHUNK_CHARS = 30_000;
const CHUNKS_PER_ROW = 12;
/** A table transaction takes at most 100 operations. */
const TRANSACTION_LIMIT = 100;

const RUN_ROW = 'run';
const subRow = (subscriptionId: string) => `sub|${tableKey(subscriptionId)}`;
const partRow = (subscriptionId: string, part: number) => `report|${tableKey(subscriptionId)}|${String(part).padStart(4, '0')}`;

/** A run id that sorts by start time and never collides between two timers firing at once. */
export function newRunId(at: Date): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
}

export class SweepRunStore {

  constructor(readonly table: TableClient) {}

  static fromConnectionString(connectionString: string, tableName = DEFAULT_RUNS_TABLE): SweepRunStore {
    return new SweepRunStore(TableClient.fromConnectionString(connectionString, tableName, tableClientOptions({ allowInsecureConnection: usesPlainHttp(connectionString, 'table') })));
  }

  private client(): Promise<TableClient> {
    return ensureTable(this.table);
  }

  private async guard<T>(operation: string, run: (client: TableClient) => Promise<T>): Promise<T> {
    const client = await this.client();
    try {
      return await run(client);
    } catch (e) {
      if (e instanceof RunStoreError) throw e;
      throw new RunStoreError(operation, e);
    }
  }

  /** Records a new run and one pending row per subscription. */
  async createRun(runId: string, subscriptions: string[], startedAt: Date): Promise<SweepRun> {
    const unique = [...new Map(subscriptions.map((s) => [s.toLowerCase(), s])).values()];
    await this.guard(`createRun(${runId})`, async (client) => {
      const actions: TransactionAction[] = unique.map((subscriptionId) => [
        'create',
        { partitionKey: runId, rowKey: subRow(subscriptionId), subscriptionId, state: 'pending', attempts: 0, resources: 0 },
      ]);
      for (let i = 0; i < actions.length; i += TRANSACTION_LIMIT) await client.submitTransaction(actions.slice(i, i + TRANSACTION_LIMIT));
      // The run row last: a run is only visible once all its subscriptions are.
      await client.createEntity({ partitionKey: runId, rowKey: RUN_ROW, subscriptionsJson: JSON.stringify(unique), expected: unique.length, startedAt: startedAt.toISOString(), state: 'open' });
    });
    const run = await this.getRun(runId);
    if (!run) throw new RunStoreError(`createRun(${runId})`, new Error('the run row is missing right after it was written'));
    return run;
  }

  async getRun(runId: string): Promise<SweepRun | undefined> {
    return this.guard(`getRun(${runId})`, async (client) => {
      try {
        return toRun(await client.getEntity<Record<string, unknown>>(runId, RUN_ROW));
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        throw e;
      }
    });
  }

  /** Runs that are not completed (for the next timer to close out what was lost). */
  async listUnfinishedRuns(): Promise<SweepRun[]> {
    return this.guard('listUnfinishedRuns', async (client) => {
      const runs: SweepRun[] = [];
      const filter = `RowKey eq '${RUN_ROW}' and state ne 'completed'`;
      for await (const row of client.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) runs.push(toRun(row));
      return runs;
    });
  }

  async listSubscriptions(runId: string): Promise<SubscriptionResult[]> {
    return this.guard(`listSubscriptions(${runId})`, async (client) => {
      const out: SubscriptionResult[] = [];
      const filter = `PartitionKey eq '${runId.replace(/'/g, "''")}' and RowKey ge 'sub|' and RowKey lt 'sub}'`;
      for await (const row of client.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) out.push(toResult(row));
      return out;
    });
  }

  /** Counts one more delivery of the subscription's message (for the log and the digest's detail). */
  async noteAttempt(runId: string, subscriptionId: string, attempt: number): Promise<void> {
    await this.guard(`noteAttempt(${subscriptionId})`, (client) =>
      client.updateEntity({ partitionKey: runId, rowKey: subRow(subscriptionId), attempts: attempt }, 'Merge').then(() => undefined),
    );
  }

  /**
   * Stores the subscription's partial report, then marks it done or failed. The report rows are
   * written first and the subscription row last, so a reader never sees "done" without its report.
   * Writing again (a redelivered message) replaces both.
   */
  async finishSubscription(runId: string, subscriptionId: string, outcome: { state: 'done' | 'failed'; report: RunReport; attempts: number; detail?: string; at: Date }): Promise<void> {
    const json = asciiJson(outcome.report);
    const chunks: string[] = [];
    for (let i = 0; i < json.length; i += CHUNK_CHARS) chunks.push(json.slice(i, i + CHUNK_CHARS));
    const parts = Math.max(1, Math.ceil(chunks.length / CHUNKS_PER_ROW));
    await this.guard(`finishSubscription(${subscriptionId})`, async (client) => {
      for (let part = 0; part < parts; part++) {
        const entity: Record<string, unknown> = { partitionKey: runId, rowKey: partRow(subscriptionId, part) };
        chunks.slice(part * CHUNKS_PER_ROW, (part + 1) * CHUNKS_PER_ROW).forEach((c, i) => (entity[`c${i}`] = c));
        await client.upsertEntity(entity as { partitionKey: string; rowKey: string }, 'Replace');
      }
      await client.upsertEntity(
        {
          partitionKey: runId,
          rowKey: subRow(subscriptionId),
          subscriptionId,
          state: outcome.state,
          attempts: outcome.attempts,
          resources: outcome.report.summary.resources,
          parts,
          finishedAt: outcome.at.toISOString(),
          ...(outcome.detail ? { detail: outcome.detail.slice(0, CHUNK_CHARS) } : {}),
        },
        'Replace',
      );
    });
  }

  /** The partial report a finished subscription stored, or undefined while it is pending. */
  async loadPartialReport(runId: string, subscriptionId: string): Promise<RunReport | undefined> {
    return this.guard(`loadPartialReport(${subscriptionId})`, async (client) => {
      let row: Row;
      try {
        row = await client.getEntity<Record<string, unknown>>(runId, subRow(subscriptionId));
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        throw e;
      }
      if (row.state === 'pending') return undefined;
      const parts = Number(row.parts ?? 0);
      let json = '';
      for (let part = 0; part < parts; part++) {
        const p = await client.getEntity<Record<string, unknown>>(runId, partRow(subscriptionId, part));
        for (let i = 0; typeof p[`c${i}`] === 'string'; i++) json += p[`c${i}`] as string;
      }
      return parseStored(runReportSchema, JSON.parse(json), `Unreadable report of subscription ${subscriptionId} in run ${runId}`);
    });
  }

  /** Every finished subscription's findings in one report; pending ones are named as errors. */
  async combinedReport(runId: string): Promise<RunReport> {
    const results = await this.listSubscriptions(runId);
    const findings: Finding[] = [];
    let resources = 0;
    for (const result of results.sort((a, b) => a.subscriptionId.localeCompare(b.subscriptionId))) {
      const partial = result.state === 'pending' ? undefined : await this.loadPartialReport(runId, result.subscriptionId);
      if (!partial) {
        findings.push(...scopeErrors(result.subscriptionId, `The sweep of subscription ${result.subscriptionId} never reported a result (run ${runId}); look for its message in the netguard-sweep-poison queue and the function logs.`));
        continue;
      }
      findings.push(...partial.findings);
      resources += partial.summary.resources;
    }
    return { findings, summary: summarize(findings, resources) };
  }

  /**
   * Claims the completion of a run for `claimant`, with If-Match on the run row: of several finishers
   * racing, exactly one wins. A claimant that already holds the claim (its message was redelivered
   * after a failure half-way) gets it again, with the same digest time.
   */
  async claimCompletion(runId: string, claimant: string, at: Date): Promise<{ claimed: boolean; run?: SweepRun }> {
    return this.guard(`claimCompletion(${runId})`, async (client) => {
      const run = await this.getRun(runId);
      if (!run || run.state === 'completed') return { claimed: false, run };
      if (run.state === 'completing') return { claimed: run.completedBy === claimant, run };
      const digestAt = at.toISOString();
      try {
        await client.updateEntity({ partitionKey: runId, rowKey: RUN_ROW, state: 'completing', completedBy: claimant, digestAt }, 'Merge', { etag: run.etag });
      } catch (e) {
        if (statusOf(e) === 412) return { claimed: false, run: await this.getRun(runId) };
        throw e;
      }
      return { claimed: true, run: { ...run, state: 'completing', completedBy: claimant, digestAt } };
    });
  }

  /** Takes over a run whose completer vanished (its claim is older than `staleBefore`). */
  async reclaimCompletion(run: SweepRun, claimant: string): Promise<boolean> {
    return this.guard(`reclaimCompletion(${run.runId})`, async (client) => {
      try {
        await client.updateEntity({ partitionKey: run.runId, rowKey: RUN_ROW, state: 'completing', completedBy: claimant, digestAt: run.digestAt ?? new Date().toISOString() }, 'Merge', { etag: run.etag });
        return true;
      } catch (e) {
        if (statusOf(e) === 412) return false;
        throw e;
      }
    });
  }

  async markCompleted(runId: string, at: Date): Promise<void> {
    await this.guard(`markCompleted(${runId})`, (client) =>
      client.updateEntity({ partitionKey: runId, rowKey: RUN_ROW, state: 'completed', completedAt: at.toISOString() }, 'Merge').then(() => undefined),
    );
  }
}

/**
 * JSON with every non-ASCII character written as a \\u escape: the size in bytes is then the length,
 * and no chunk boundary can fall inside a multi-byte character (Azurite mangles one that does).
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Error findings for a whole subscription, shaped like the engine's when it cannot list one. */
export function scopeErrors(subscriptionId: string, detail: string): Finding[] {
  const scope = `/subscriptions/${subscriptionId}`;
  return CONTROL_IDS.map((control) => ({ control, resourceId: scope, targetId: scope, status: 'error' as const, action: 'none' as const, detail }));
}

const runRowSchema = z.object({
  partitionKey: z.string(),
  subscriptionsJson: z.string().default('[]'),
  startedAt: z.string(),
  state: z.enum(RUN_STATES).default('open'),
  completedBy: z.string().optional(),
  digestAt: z.string().optional(),
  completedAt: z.string().optional(),
  etag: z.string(),
});
const subscriptionIdsSchema = z.array(z.string());

function toRun(row: Row): SweepRun {
  const what = `Unreadable sweep run row ${row.partitionKey ?? ''}`;
  const r = parseStored(runRowSchema, row, what);
  return {
    runId: r.partitionKey,
    subscriptions: parseStored(subscriptionIdsSchema, JSON.parse(r.subscriptionsJson), what),
    startedAt: r.startedAt,
    state: r.state,
    completedBy: r.completedBy,
    digestAt: r.digestAt,
    completedAt: r.completedAt,
    etag: r.etag,
  };
}

const resultRowSchema = z.object({
  subscriptionId: z.string(),
  state: z.enum(SUBSCRIPTION_STATES),
  attempts: z.number().int().nonnegative().default(0),
  detail: z.string().optional(),
  finishedAt: z.string().optional(),
  resources: z.number().int().nonnegative().default(0),
});

function toResult(row: Row): SubscriptionResult {
  return parseStored(resultRowSchema, row, `Unreadable sweep result row ${row.partitionKey ?? ''}/${row.rowKey ?? ''}`);
}

/** The run store the settings point at (same storage as everything else), or undefined without storage. */
export function sweepRunsFromEnvironment(env: NodeJS.ProcessEnv = process.env, tableName = DEFAULT_RUNS_TABLE): SweepRunStore | undefined {
  const connection = env.AzureWebJobsStorage?.trim();
  if (connection) return SweepRunStore.fromConnectionString(connection, tableName);
  const url = storageServiceUrl(env, 'table');
  if (!url) return undefined;
  return new SweepRunStore(new TableClient(url, tableName, storageCredentialFromEnvironment(env), tableClientOptions()));
}
