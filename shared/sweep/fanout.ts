// The daily sweep as a fan-out: the timer lists the subscriptions in scope and queues one message per
// subscription; each message sweeps one subscription (so a large estate is swept in parallel across
// Function instances, and a retry redoes only that subscription); the last one to finish builds the
// combined report and queues the digest, exactly once. Nothing here imports the Teams SDK.
import type { QueueClient } from '@azure/storage-queue';
import pLimit from 'p-limit';
import { describeError } from '../azure/errors';
import type { Engine } from '../engine/engine';
import type { NoticeSink } from '../notify/types';
import type { Runtime } from '../runtime';
import { summarize, type Mode, type RunReport } from '../types';
import { z } from 'zod';
import { decodeQueueJson, encodeQueueJson, queueClientFromEnvironment } from '../store/queues';
import { parseStored } from '../store/schemas';
import { newRunId, scopeErrors, sweepRunsFromEnvironment, type SweepRun, type SweepRunStore } from './runs';

export const SWEEP_QUEUE = 'netguard-sweep';
/** Where the Functions host moves a message after its last failed attempt. */
export const SWEEP_POISON_QUEUE = `${SWEEP_QUEUE}-poison`;
/** Must equal host.json extensions.queues.maxDequeueCount (the host's default is 5). */
export const MAX_DEQUEUE_COUNT = 5;
/** Messages sent at once by the timer (the queue service takes each send as one request). */
const SEND_CONCURRENCY = 16;
/** A run still open this long after it started has lost messages (the host gives up far sooner). */
export const STALE_RUN_MS = 6 * 3600_000;

export interface SweepMessage {
  runId: string;
  subscriptionId: string;
  /** 1 for the timer's fan-out; the host's dequeueCount counts the redeliveries. */
  attempt: number;
}

export function encodeSweepMessage(message: SweepMessage): string {
  return encodeQueueJson(message);
}

const sweepMessageSchema: z.ZodType<SweepMessage, z.ZodTypeDef, unknown> = z.object({
  runId: z.string().min(1),
  subscriptionId: z.string().min(1),
  attempt: z.number().int().positive().default(1),
});

export function decodeSweepMessage(message: unknown): SweepMessage {
  return parseStored(sweepMessageSchema, decodeQueueJson(message), 'Not a NetGuard sweep message');
}

/** The sweep queue the settings point at (connection string or the host's identity-based settings). */
export function sweepQueueFromEnvironment(env: NodeJS.ProcessEnv = process.env, queueName = SWEEP_QUEUE): QueueClient | undefined {
  return queueClientFromEnvironment(env, queueName);
}

/** What the fan-out needs besides the runtime; tests pass their own (Azurite tables and queues). */
export interface FanOutDeps {
  runs: SweepRunStore;
  queue: QueueClient;
  notices?: NoticeSink;
  clock?: () => Date;
  log?: (line: string) => void;
  /** The host's maxDequeueCount (host.json); tests lower it. */
  maxDequeueCount?: number;
  cliMode?: Mode;
}

/** FanOutDeps from the app settings; throws a clear error when there is no storage at all. */
export function fanOutDepsFromEnvironment(runtime: Runtime, env: NodeJS.ProcessEnv = process.env): FanOutDeps {
  const runs = sweepRunsFromEnvironment(env);
  const queue = sweepQueueFromEnvironment(env);
  if (!runs || !queue) throw new Error('The daily sweep needs AzureWebJobsStorage (or its identity-based settings): runs are tracked in Azure Tables and fanned out on the netguard-sweep queue.');
  return { runs, queue, notices: runtime.notices };
}

export interface FanOutResult {
  runId: string;
  subscriptions: string[];
  /** Earlier runs that had lost subscriptions and were completed now. */
  closedStaleRuns: string[];
}

/** The timer's work: close lost runs, record a new run, queue one message per subscription. */
export async function fanOutSweep(runtime: Runtime, deps: FanOutDeps): Promise<FanOutResult> {
  const clock = deps.clock ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const closedStaleRuns = await closeStaleRuns(deps, `timer@${clock().toISOString()}`);
  const subscriptions = runtime.settings.subscriptions ?? (await runtime.arm.listSubscriptionIds());
  const startedAt = clock();
  const runId = newRunId(startedAt);
  const run = await deps.runs.createRun(runId, subscriptions, startedAt);
  if (run.subscriptions.length === 0) {
    log(`netguard sweep ${runId}: no subscription in scope (AKS_NETGUARD_SUBSCRIPTIONS is empty and the identity lists none); the digest says so.`);
    await completeRunIfFinished(runId, `timer:${runId}`, deps);
    return { runId, subscriptions: [], closedStaleRuns };
  }
  await deps.queue.createIfNotExists();
  const limit = pLimit(SEND_CONCURRENCY);
  await Promise.all(run.subscriptions.map((subscriptionId) => limit(() => deps.queue.sendMessage(encodeSweepMessage({ runId, subscriptionId, attempt: 1 })))));
  log(`netguard sweep ${runId}: queued ${run.subscriptions.length} subscription(s) on ${SWEEP_QUEUE}.`);
  return { runId, subscriptions: run.subscriptions, closedStaleRuns };
}

/** How one subscription's sweep went: its report, and whether a retry can help. */
export interface SubscriptionSweep {
  report: RunReport;
  /** Set when the subscription could not be read for a reason that may pass (429, 5xx, network). */
  retryable?: Error;
}

/** Sweeps one subscription; a retryable failure (throttling, 5xx) is returned for the queue to retry. */
export async function sweepOneSubscription(engine: Engine, subscriptionId: string, options: { cliMode?: Mode } = {}): Promise<SubscriptionSweep> {
  return engine.sweepDetailed([subscriptionId], options);
}

export interface QueueInvocation {
  /** The queue message id: the same on every delivery of one message. */
  messageId?: string;
  /** The host's dequeueCount: 1 on the first delivery. */
  dequeueCount: number;
  invocationId: string;
}

export type SweepMessageOutcome =
  | { outcome: 'done'; completedRun: boolean }
  | { outcome: 'failed'; completedRun: boolean; detail: string };

/**
 * The queue function's work. Throws to have the host redeliver (a retryable failure before the last
 * attempt); on the last attempt the subscription is recorded as failed first, so the run completes
 * and the digest names it, and then it throws so the message still ends in the poison queue.
 */
export async function handleSweepMessage(raw: unknown, invocation: QueueInvocation, runtime: Runtime, deps: FanOutDeps): Promise<SweepMessageOutcome> {
  const clock = deps.clock ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const maxDequeue = deps.maxDequeueCount ?? MAX_DEQUEUE_COUNT;
  const message = decodeSweepMessage(raw);
  const { runId, subscriptionId } = message;
  const attempt = invocation.dequeueCount;
  const lastAttempt = attempt >= maxDequeue;
  const claimant = invocation.messageId ?? invocation.invocationId;

  let sweep: SubscriptionSweep | undefined;
  let failure: unknown;
  try {
    await deps.runs.noteAttempt(runId, subscriptionId, attempt);
    sweep = await sweepOneSubscription(runtime.engine, subscriptionId, { cliMode: deps.cliMode });
  } catch (err) {
    failure = err;
  }

  if (sweep && !sweep.retryable) {
    await deps.runs.finishSubscription(runId, subscriptionId, { state: 'done', report: sweep.report, attempts: attempt, at: clock() });
    log(`netguard sweep ${runId}: subscription ${subscriptionId} swept on attempt ${attempt}: ${sweep.report.summary.resources} cluster(s), ${sweep.report.summary.drift} drift, ${sweep.report.summary.errors} error(s).`);
    return { outcome: 'done', completedRun: await completeRunIfFinished(runId, claimant, deps) };
  }

  const why = sweep?.retryable ? describeError(sweep.retryable) : describeError(failure);
  if (!lastAttempt) {
    // Only this subscription is redone; the others' results are already stored. A thrown error
    // (storage trouble, a bug) is retried too: the host's attempt limit bounds it either way.
    log(`netguard sweep ${runId}: subscription ${subscriptionId} failed on attempt ${attempt} of ${maxDequeue}, the queue will retry it: ${why}`);
    throw new Error(`netguard sweep of ${subscriptionId} (run ${runId}) failed on attempt ${attempt} of ${maxDequeue}; retrying: ${why}`);
  }

  const detail = `The sweep of subscription ${subscriptionId} failed on all ${attempt} attempt(s); its message was moved to the ${SWEEP_POISON_QUEUE} queue: ${why}`;
  const scope = `/subscriptions/${subscriptionId}`.toLowerCase();
  const findings = sweep
    ? sweep.report.findings.map((f) => (f.status === 'error' && f.resourceId.toLowerCase() === scope ? { ...f, detail: `${f.detail} (gave up after ${attempt} attempt(s); the message is in ${SWEEP_POISON_QUEUE}.)` } : f))
    : scopeErrors(subscriptionId, detail);
  const report: RunReport = { findings, summary: summarize(findings, sweep?.report.summary.resources ?? 0) };
  await deps.runs.finishSubscription(runId, subscriptionId, { state: 'failed', report, attempts: attempt, detail, at: clock() });
  let completedRun: boolean;
  try {
    completedRun = await completeRunIfFinished(runId, claimant, deps);
  } finally {
    log(`netguard sweep POISON: run ${runId}, subscription ${subscriptionId}: ${detail}`);
  }
  // Thrown so the host moves the message to the poison queue: the failure stays visible there too.
  throw new PoisonedSweepError(detail, completedRun);
}

/** The last attempt failed: the subscription is recorded as failed and the message goes to the poison queue. */
export class PoisonedSweepError extends Error {
  constructor(
    message: string,
    readonly completedRun: boolean,
  ) {
    super(message);
    this.name = 'PoisonedSweepError';
  }
}

/**
 * Completes the run if no subscription is pending: claims it (If-Match on the run row, so one
 * finisher wins), builds the combined report, queues the digest, marks the run completed. Returns
 * true for the caller that completed it. A claimant redelivered after a failure half-way redoes the
 * enqueue with the same digest time, which delivery treats as the same digest.
 */
export async function completeRunIfFinished(runId: string, claimant: string, deps: FanOutDeps): Promise<boolean> {
  const clock = deps.clock ?? (() => new Date());
  const results = await deps.runs.listSubscriptions(runId);
  if (results.some((r) => r.state === 'pending')) return false;
  const { claimed, run } = await deps.runs.claimCompletion(runId, claimant, clock());
  if (!claimed || !run) return false;
  await finishRun(run, deps);
  return true;
}

async function finishRun(run: SweepRun, deps: FanOutDeps): Promise<void> {
  const clock = deps.clock ?? (() => new Date());
  const report = await deps.runs.combinedReport(run.runId);
  const at = run.digestAt ?? clock().toISOString();
  if (deps.notices) await deps.notices.enqueue({ kind: 'digest', runId: run.runId, at });
  else deps.log?.(`netguard sweep ${run.runId}: no notice queue configured; the digest was not sent.`);
  await deps.runs.markCompleted(run.runId, clock());
  const failed = report.findings.filter((f) => f.status === 'error' && /^\/subscriptions\/[^/]+$/i.test(f.resourceId));
  const failedSubs = new Set(failed.map((f) => f.resourceId.toLowerCase())).size;
  deps.log?.(
    `netguard sweep ${run.runId} completed: ${run.subscriptions.length} subscription(s)${failedSubs ? `, ${failedSubs} failed` : ''}, ${report.summary.resources} cluster(s), ${report.summary.drift} drift, ${report.summary.errors} error(s); digest queued.`,
  );
}

/**
 * Completes runs that the queue left unfinished (a message lost with the instance that held it, or a
 * completer that crashed): what never reported is named in the digest as an error, not dropped.
 */
export async function closeStaleRuns(deps: FanOutDeps, claimant: string): Promise<string[]> {
  const clock = deps.clock ?? (() => new Date());
  const closed: string[] = [];
  for (const run of await deps.runs.listUnfinishedRuns()) {
    if (clock().getTime() - Date.parse(run.startedAt) < STALE_RUN_MS) continue;
    if (!(await deps.runs.reclaimCompletion(run, claimant))) continue;
    deps.log?.(`netguard sweep ${run.runId}: still unfinished ${Math.round((clock().getTime() - Date.parse(run.startedAt)) / 3600_000)} h after it started; completing it with the subscriptions that never reported marked as errors.`);
    await finishRun({ ...run, digestAt: run.digestAt ?? clock().toISOString() }, deps);
    closed.push(run.runId);
  }
  return closed;
}
