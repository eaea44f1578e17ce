// Turns a batch of Event Grid events into reconciles of exactly the resources they can affect.
// Shared by the Event Grid function, `aks-netguard handle-event` and `aks-netguard serve`.
import { classifyError, describeError } from '../azure/errors';
import { idKey } from '../azure/ids';
import type { Runtime } from '../runtime';
import { StorageUnavailableError, type EventClaim, type StateStore } from '../store/types';
import { summarize, type Finding, type Mode, type RunReport } from '../types';
import type { EventProblem, NetGuardEvent, SubscriptionValidation } from './parse';
import { routeEvent, type ReconcileRoute } from './route';

/** Event Grid retries for 24 h; an event id seen again within that window is a no-op. */
export const DUPLICATE_WINDOW_MS = 24 * 3600_000;
/**
 * How long a claim on an event protects a delivery that is still processing it. Longer than a
 * function may run (10 minutes at most on Consumption); a claim older than this was abandoned (the
 * instance crashed), and Event Grid's later redeliveries (30 min, 1 h, …) take it over.
 */
export const CLAIM_LEASE_MS = 15 * 60_000;

/**
 * Claims this process took and could not settle afterwards (storage failed while completing or
 * releasing them), per store and event id. Such a claim looks "still processing" to everyone until
 * its lease ends, but this process knows its delivery is over: when the event comes back here, the
 * claim is settled first and the redelivery proceeds, instead of being told to come back for 15
 * minutes. (Another instance still waits for the lease: it cannot tell a dead claim from a live one.)
 */
const MAX_UNSETTLED_CLAIMS = 1000;
const unsettledClaims = new WeakMap<StateStore, Map<string, { claim: EventClaim; outcome: 'retry' | 'done' }>>();

function unsettledOf(store: StateStore): Map<string, { claim: EventClaim; outcome: 'retry' | 'done' }> {
  let m = unsettledClaims.get(store);
  if (!m) unsettledClaims.set(store, (m = new Map()));
  return m;
}

/** One structured log line per event, for an operator to follow. */
export interface EventLogLine {
  eventId: string;
  operation?: string;
  resourceId: string;
  outcome: 'reconciled' | 'ignored' | 'duplicate' | 'failed' | 'retry';
  reason?: string;
  reconciled: string[];
  armCalls: number;
  ms: number;
}

export interface EventBatchOutcome {
  report: RunReport;
  log: EventLogLine[];
  invalid: EventProblem[];
  validation?: SubscriptionValidation;
  /** Set when a retryable failure means Event Grid must deliver (some of) the batch again. */
  retry?: Error;
}

export interface EventBatchInput {
  /** Strict parse result (`events`) or lenient one (`valid`). */
  events?: NetGuardEvent[];
  valid?: NetGuardEvent[];
  invalid?: EventProblem[];
  validation?: SubscriptionValidation;
}

export function callerName(e: NetGuardEvent): string | undefined {
  const c = e.caller;
  return c.name ?? c.upn ?? (c.appId ? `app ${c.appId}` : undefined) ?? (c.objectId ? `object ${c.objectId}` : undefined);
}

export async function processEventBatch(batch: EventBatchInput, runtime: Runtime, options: { cliMode?: Mode; clock?: () => Date } = {}): Promise<EventBatchOutcome> {
  const clock = options.clock ?? runtime.clock ?? (() => new Date());
  const { engine, arm, store, settings } = runtime;
  const log: EventLogLine[] = [];
  const findings = new Map<string, Finding>();
  const clusters = new Set<string>();
  let retry: Error | undefined;

  // Route every event first: ignored ones cost no Azure call at all.
  const work: Array<{ event: NetGuardEvent; route: ReconcileRoute; started: number }> = [];
  for (const event of batch.events ?? batch.valid ?? []) {
    const started = Date.now();
    const route = routeEvent(event, { principalId: settings.principalId, subscriptions: settings.subscriptions });
    if (route.kind === 'ignore') {
      log.push({ eventId: event.id, operation: event.operationName, resourceId: event.resourceId, outcome: 'ignored', reason: route.reason, reconciled: [], armCalls: 0, ms: Date.now() - started });
      continue;
    }
    work.push({ event, route, started });
  }

  // Several events for one resource in a batch lead to one reconcile. Each event id is claimed first
  // (a conditional insert in the ledger): of concurrent deliveries of one id exactly one reconciles.
  // One that finds the id handled is a duplicate. One that finds it still being handled elsewhere
  // asks for a redelivery instead of answering for a result it has not seen (the other delivery may
  // yet fail); by then the id is done, or given back, or its claim has expired. A claim that cannot
  // be taken because storage is down is retried too: nothing is written to Azure without a record.
  const byTarget = new Map<string, typeof work>();
  const claims = new Map<string, EventClaim>();
  const now = clock().getTime();
  const window = { doneSince: new Date(now - DUPLICATE_WINDOW_MS), leaseSince: new Date(now - CLAIM_LEASE_MS) };
  for (const w of work) {
    const skip = (outcome: EventLogLine['outcome'], reason?: string) =>
      log.push({ eventId: w.event.id, operation: w.event.operationName, resourceId: w.event.resourceId, outcome, reason, reconciled: [], armCalls: 0, ms: Date.now() - w.started });
    if (store) {
      // A copy of an id already claimed in this batch is processed with it.
      if (claims.has(w.event.id)) {
        skip('duplicate', 'another copy in the same batch');
        continue;
      }
      let claim: EventClaim | 'done' | 'processing';
      try {
        const leftover = unsettledOf(store).get(w.event.id);
        if (leftover) {
          // Conditional on the claim's ETag: a claim taken over meanwhile is left alone (412/404).
          await (leftover.outcome === 'retry' ? store.releaseEvent(leftover.claim) : store.completeEvent(leftover.claim, clock()));
          unsettledOf(store).delete(w.event.id);
        }
        claim = await store.claimEvent(w.event.id, clock(), window);
      } catch (err) {
        const reason = `Storage is unavailable, so the event was not processed (it is retried): ${describeError(err)}`;
        retry ??= new StorageUnavailableError(reason, { cause: err });
        skip('retry', reason);
        continue;
      }
      if (claim === 'done') {
        skip('duplicate');
        continue;
      }
      if (claim === 'processing') {
        const reason = 'Another delivery of this event is being processed; asking for a redelivery to learn how it ends.';
        retry ??= new Error(reason);
        skip('retry', reason);
        continue;
      }
      claims.set(w.event.id, claim);
    }
    const key = idKey(w.route.resourceId);
    if (!byTarget.has(key)) byTarget.set(key, []);
    byTarget.get(key)!.push(w);
  }

  for (const group of byTarget.values()) {
    const { resourceId, target } = group[0].route;
    let armCalls = 0;
    const changedBy = group.map((w) => callerName(w.event)).find(Boolean);
    let outcome: EventLogLine['outcome'] = 'reconciled';
    let reason: string | undefined;
    let reconciled: string[] = [];
    try {
      const counted = await arm.countCalls(() => engine.reconcileDetailed({ kind: target, id: resourceId }, { cliMode: options.cliMode, changedBy, runId: group.map((w) => w.event.id).join(',') }));
      armCalls = counted.calls.total;
      const { report, retryable } = counted.result;
      if (retryable) {
        outcome = 'retry';
        retry ??= retryable;
      }
      for (const f of report.findings) {
        findings.set(`${f.control}|${idKey(f.resourceId)}|${idKey(f.targetId)}`, f);
        clusters.add(idKey(f.resourceId));
      }
      reconciled = [...new Set(report.findings.map((f) => f.resourceId))];
      const failed = report.findings.find((f) => f.status === 'error');
      if (failed) reason = failed.detail;
      if (failed && outcome === 'reconciled') outcome = 'failed';
    } catch (err) {
      reason = describeError(err);
      if (classifyError(err) === 'retryable') {
        outcome = 'retry';
        retry ??= err instanceof Error ? err : new Error(String(err));
      } else {
        outcome = 'failed';
      }
    }
    for (const w of group) {
      log.push({ eventId: w.event.id, operation: w.event.operationName, resourceId: w.event.resourceId, outcome, reason, reconciled, armCalls, ms: Date.now() - w.started });
      const claim = claims.get(w.event.id);
      if (!store || !claim) continue;
      // A retryable failure gives the id back so the redelivery is processed; anything else is done.
      const settle = outcome === 'retry' ? store.releaseEvent(claim) : store.completeEvent(claim, clock());
      // A claim that could not be settled is settled when the event comes back to this process (see
      // unsettledClaims); elsewhere it expires after CLAIM_LEASE_MS. Nothing is lost either way.
      await settle.catch(() => {
        const unsettled = unsettledOf(store);
        unsettled.set(w.event.id, { claim, outcome: outcome === 'retry' ? 'retry' : 'done' });
        // Bounded: redeliveries that went to other instances never come to clear their entry here.
        if (unsettled.size > MAX_UNSETTLED_CLAIMS) unsettled.delete(unsettled.keys().next().value as string);
      });
    }
  }

  const all = [...findings.values()];
  return { report: { findings: all, summary: summarize(all, clusters.size) }, log, invalid: batch.invalid ?? [], validation: batch.validation, retry };
}
