// "Tell the truth about its own writes", across runs. A run records its intent before each write and
// an outcome row after it. When storage fails between the two (Azure applied the write, the
// remediated row, notice and flap record were lost), the run is retried — an event is redelivered,
// the CLI exits 1 — and the retry finds the target already compliant. Without this module it would
// say "compliant", and NetGuard's own fix would never be audited or announced. With it, an intent
// that has no outcome row and whose change the resource now holds is recognised as NetGuard's own
// fix: the run completes it (audit `remediated` naming the intent, notice, flap record) and reports
// `remediated`.
import { holdsWritten, getPath, sameWireValue } from '../azure/arm';
import { describeError } from '../azure/errors';
import { idKey, sameId } from '../azure/ids';
import type { ClusterObservation, Judgement, PlannedChange } from '../controls/types';
import type { AuditEntry, StateStore } from '../store/types';
import { announceFix } from './apply';
import type { EngineContext, Run, TargetOutcome } from './context';

/**
 * How far back a run looks for intents without an outcome: Event Grid redelivers for 24 hours, and a
 * sweep runs at least daily; an older unfinished intent is left to a person reading the audit.
 */
export const OPEN_INTENT_WINDOW_MS = 26 * 3600_000;

/** True when the observed resource holds what the change wrote (the same comparison as a lost answer's re-read). */
export function holdsChange(change: PlannedChange, observation: ClusterObservation): boolean {
  if (change.kind === 'security-rule') {
    const nsg = observation.topology.nsg(change.nsgId);
    const rule = nsg?.properties.securityRules?.find((r) => r.name.toLowerCase() === change.ruleName.toLowerCase());
    return holdsWritten(change.after as unknown as Record<string, unknown>, rule?.properties as unknown as Record<string, unknown> | undefined);
  }
  // NetworkPolicy writes are not completed across runs (yet): their verification reads the namespace
  // again in the same run, and a lost outcome there is written again by the next sweep (fixed name).
  if (change.kind === 'kube-network-policy') return false;
  if (!sameId(change.clusterId, observation.cluster.id)) return false;
  return sameWireValue(change.after, getPath(observation.cluster, change.path));
}

/**
 * The open intents of one run, read from storage once (lazily, on the first compliant judgement) and
 * indexed by control and target. Intents this process is still carrying out (`inFlight`) and the
 * run's own are not open: their run records the outcome itself.
 */
export class OpenIntents {
  private loaded?: Promise<{ open: Map<string, AuditEntry[]>; answered: Map<string, AuditEntry> }>;

  constructor(
    private readonly store: StateStore,
    private readonly now: Date,
    /** The run's id: for an event, its event id(s), the same on every delivery. */
    private readonly runId: string,
    private readonly inFlight: ReadonlySet<string>,
  ) {}

  /**
   * For this judgement's control and target: the open intents whose change the resource holds, oldest
   * first (`held`, empty when there are none), and the `remediated` row an earlier delivery of the same
   * event wrote (`answered`): that delivery made and recorded the fix but was answered with a retry
   * (storage failed elsewhere during it), and the redelivery owes Event Grid the same answer.
   * Throws when storage cannot answer.
   */
  async take(judgement: Pick<Judgement, 'control' | 'targetId'>, observation: ClusterObservation): Promise<{ held: AuditEntry[]; answered?: AuditEntry }> {
    if (!this.store.openIntents) return { held: [] };
    const key = `${judgement.control}|${idKey(judgement.targetId)}`;
    this.loaded ??= this.store.openIntents(new Date(this.now.getTime() - OPEN_INTENT_WINDOW_MS), this.runId).then((rows) => {
      const open = new Map<string, AuditEntry[]>();
      const answered = new Map<string, AuditEntry>();
      for (const row of rows) {
        const k = `${row.control}|${idKey(row.targetId)}`;
        if (row.event === 'remediated') {
          if (row.runId === this.runId) answered.set(k, row);
          continue;
        }
        if (!row.change || !row.intent || this.inFlight.has(row.intent)) continue;
        open.set(k, [...(open.get(k) ?? []), row]);
      }
      return { open, answered };
    });
    // A failed read is not cached: the caller treats it as a storage failure of this run.
    const all = await this.loaded.catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    });
    return { held: (all.open.get(key) ?? []).filter((row) => holdsChange(row.change!, observation)), answered: all.answered.get(key) };
  }
}

/**
 * A target judged compliant may be compliant because of NetGuard's own earlier write whose outcome
 * was never recorded (storage failed after Azure applied it). Such intents are completed now —
 * audited `remediated` naming them, announced, counted for the flap guard — and the finding is
 * `remediated`, not `compliant`. Undefined when there is nothing to complete.
 */
export function completeOpenIntents(ctx: EngineContext, run: Run, judgement: Judgement, observation: ClusterObservation): Promise<TargetOutcome | undefined> {
  const store = ctx.deps.store;
  if (!store?.openIntents) return Promise.resolve(undefined);
  const key = `${judgement.control}|${idKey(judgement.targetId)}`;
  let completion = run.completions.get(key);
  if (!completion) {
    completion = (async (): Promise<TargetOutcome | undefined> => {
      run.openIntents ??= new OpenIntents(store, ctx.clock(), run.id, ctx.inFlight);
      let found: Awaited<ReturnType<OpenIntents['take']>>;
      try {
        found = await run.openIntents.take(judgement, observation);
      } catch (err) {
        // Unknown whether this "compliant" is NetGuard's own unrecorded fix: the run is retried.
        ctx.storageFailed(err);
        ctx.deps.warn?.(`Could not look for unfinished fixes of ${judgement.targetId}: ${describeError(err)}`);
        return undefined;
      }
      const { held, answered } = found;
      if (!held.length) {
        // An earlier delivery of this event fixed it and recorded the fix, but was answered with a
        // retry (storage failed during it): the redelivery gives the same answer, announcing nothing twice.
        if (answered) return { action: 'remediated', detail: `${judgement.detail} NetGuard fixed it: ${answered.detail ?? 'see the audit'} (an earlier delivery of this event, at ${answered.at}).` };
        return undefined;
      }
      const first = held[0];
      const last = held[held.length - 1];
      const steps = held.map((h) => h.change!.summary).join(' Then: ');
      const detail = `${judgement.detail} NetGuard fixed it: ${steps} (the write was made by an earlier run, ${first.runId ?? 'unnamed'}, whose record of the outcome was lost; completed now).`;
      const actor = last.actor && last.actor !== 'netguard (auto)' ? last.actor : undefined;
      await announceFix(ctx, { judgement, detail, before: first.before, change: last.change!, steps, actor, intent: held.map((h) => h.intent).join(','), runId: run.id });
      return { action: 'remediated', detail };
    })();
    run.completions.set(key, completion);
  }
  return completion;
}
