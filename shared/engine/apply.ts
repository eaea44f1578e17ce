// Applying a fix with verification: record the intent, write through the write gate (changeKinds.ts),
// re-read and re-judge; on a conflict (412 / 409) re-read, re-judge, re-plan and try again (bounded).
// Only a verified fix is `remediated`. What only a person may do comes back as `rest`.
import { ConcurrencyError, VerificationError, describeError } from '../azure/errors';
import { sameId } from '../azure/ids';
import type { ClusterObservation, Control, Judgement, PlannedChange } from '../controls/types';
import type { Finding } from '../types';
import { applyChange, isConflict, personReason, sameChange, startClusterUpdate, writablePart, writesOf } from './changeKinds';
import { lowerFirst, type EngineContext, type Run, type TargetOutcome } from './context';
import { VERIFY_DELAY_SECONDS, type PendingClusterUpdate } from './deferred';
import { reobserve } from './observeCluster';
import { WriteRefusedError } from './writeGate';

/** How many times a write is retried after a conflict (each time after re-reading and re-judging). */
const MAX_CONFLICT_ROUNDS = 3;
/** How many successive fixes one target may need in one run (e.g. narrow an Allow, then add the Deny). */
const MAX_FIX_STEPS = 3;

/** Applies, re-reads, re-judges. On a conflict: re-read, re-judge, re-plan, try again (bounded). */
export async function remediate(
  ctx: EngineContext,
  run: Run,
  control: Control,
  judgement: Judgement,
  observation: ClusterObservation,
  first: PlannedChange,
  approved = false,
): Promise<TargetOutcome> {
  const intents: string[] = [];
  try {
    return await remediateSteps(ctx, run, control, judgement, observation, first, approved, intents);
  } finally {
    // Outcome recorded (or lost): from now on a later run may find these intents open (openIntents.ts).
    for (const id of intents) ctx.inFlight.delete(id);
  }
}

async function remediateSteps(
  ctx: EngineContext,
  run: Run,
  control: Control,
  judgement: Judgement,
  observation: ClusterObservation,
  first: PlannedChange,
  approved: boolean,
  intents: string[],
): Promise<TargetOutcome> {
  let plan: PlannedChange = first;
  let current = judgement;
  let conflicts = 0;
  const applied: string[] = [];
  for (let step = 0; step < MAX_FIX_STEPS + MAX_CONFLICT_ROUNDS; step++) {
    let readBack: ClusterObservation | undefined;
    // No write without a record (throws, and nothing is written, when storage cannot take it).
    const intent = await ctx.recordIntent(run, current, plan);
    if (intent) intents.push(intent);
    try {
      ctx.deps.progress?.(`${control.id}: ${plan.summary}`);
      run.writes += writesOf(plan);
      const defer = ctx.deps.deferClusterUpdates;
      if (plan.kind === 'cluster-property' && defer) {
        const operation = await startClusterUpdate(ctx, plan, observation);
        const pending: PendingClusterUpdate = {
          control: control.id,
          clusterId: judgement.clusterId,
          targetId: judgement.targetId,
          operation,
          change: plan,
          detail: judgement.detail,
          actor: run.actor,
          changedBy: run.changedBy,
          startedAt: ctx.clock().toISOString(),
          attempt: 1,
          intent,
        };
        await defer.enqueue(pending, (operation.retryAfterMs ?? VERIFY_DELAY_SECONDS * 1000) / 1000);
        await ctx.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'update-started', before: plan.before, after: plan.after, actor: run.actor ?? 'netguard (auto)', detail: plan.summary, intent, runId: run.id });
        return {
          action: 'reported',
          started: true,
          detail: `${judgement.detail} NetGuard started the fix (${lowerFirst(plan.summary)}); AKS takes minutes, so it verifies the update when it ends and reports it remediated then.`,
        };
      }
      readBack = await applyChange(ctx, run, plan, observation);
      applied.push(plan.summary);
    } catch (err) {
      if (isConflict(err)) {
        // The write was refused (the resource changed since it was read): it is not in place.
        if (intent) await ctx.closeIntents(run, current, [intent], 'write-conflict', `The write was refused as a conflict (the resource changed since NetGuard read it): ${plan.summary}`);
        if (++conflicts > MAX_CONFLICT_ROUNDS) throw new ConcurrencyError(`${judgement.targetId} kept changing under NetGuard (conflict ${conflicts} times).`);
      } else {
        await ctx.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: err instanceof WriteRefusedError ? 'write-refused' : 'write-failed', before: plan.before, after: plan.after, actor: 'netguard (auto)', detail: describeError(err), intent, runId: run.id });
        throw err;
      }
    }
    // Verify (or, after a conflict, catch up): re-read the target and judge it again.
    const refreshed = readBack ?? (await reobserve(ctx, run, control, observation, current));
    const again = control.evaluate(refreshed).find((j) => sameId(j.targetId, judgement.targetId));
    if (!again || again.compliant) {
      if (applied.length === 0) return { action: 'none', status: 'compliant', detail: `${judgement.detail} It was repaired by someone else before NetGuard's write.` };
      const detail = `${judgement.detail} NetGuard fixed it: ${applied.join(' Then: ')}`;
      // Awaited here, while the intents are still in flight: a concurrent run must not take them for open.
      await announceFix(ctx, { judgement, detail, before: first.before, change: plan, steps: applied.join(' Then: '), actor: run.actor, changedBy: run.changedBy, intent: intents.join(','), runId: run.id });
      return { action: 'remediated', detail };
    }
    const next = control.plan(again, refreshed);
    if (next.kind === 'none') {
      // (Intents refused as conflicts were closed already; only writes that took are left.)
      if (applied.length > 0) await ctx.closeIntents(run, judgement, intents, 'verify-failed', `The writes did not make it compliant: ${again.detail}`);
      throw new VerificationError(`the write did not make it compliant: ${again.detail} ${next.reason}`);
    }
    const writable = writablePart(next, approved);
    if (applied.length > 0 && writable && sameChange(writable, plan)) {
      await ctx.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'verify-failed', after: plan.after, actor: 'netguard (auto)', detail: again.detail, intent: intents.join(','), runId: run.id });
      throw new VerificationError(`${plan.kind === 'kube-network-policy' ? 'The API server' : 'Azure'} accepted the write but re-reading shows it did not take: ${again.detail}`);
    }
    if (!writable) {
      // What NetGuard may make alone is made (and verified); the rest is for a person.
      let fixed = '';
      if (applied.length > 0) {
        fixed = applied.join(' Then: ');
        await announceFix(ctx, { judgement, detail: `${judgement.detail} NetGuard fixed part of it: ${fixed}`, before: first.before, change: plan, steps: fixed, actor: run.actor, changedBy: run.changedBy, intent: intents.join(','), runId: run.id });
      }
      return { action: 'reported', detail: again.detail, rest: { judgement: again, plan: next, reason: personReason(next), fixed } };
    }
    plan = writable;
    current = again;
    observation = refreshed;
  }
  throw new ConcurrencyError(`${judgement.targetId} did not settle after ${MAX_FIX_STEPS} fixes.`);
}

/** A verified fix: audited, announced (Teams notice) and counted for the flap guard, together. */
export async function announceFix(
  ctx: EngineContext,
  fix: {
    judgement: Pick<Judgement, 'control' | 'clusterId' | 'targetId'>;
    detail: string;
    before: unknown;
    change: PlannedChange;
    steps: string;
    actor?: string;
    changedBy?: string;
    /** The intent row(s) of the write(s) this fix took, and the run. */
    intent?: string;
    runId?: string;
  },
): Promise<Finding> {
  const { control, clusterId, targetId } = fix.judgement;
  const finding: Finding = { control, resourceId: clusterId, targetId, status: 'drift', action: 'remediated', detail: fix.detail };
  const [announced, counted] = await Promise.all([
    ctx.notify({ kind: 'remediated', finding, change: fix.change, changedBy: fix.changedBy, at: ctx.clock().toISOString() }),
    (ctx.deps.store?.recordRemediation(control, targetId, ctx.clock(), fix.changedBy) ?? Promise.resolve()).then(
      () => true,
      (err: unknown) => {
        ctx.storageFailed(err);
        ctx.deps.warn?.(`Could not record the fix of ${targetId} for the flap guard: ${describeError(err)}`);
        return false;
      },
    ),
  ]);
  // The remediated row completes the intent, so it is written last and only when the notice and the
  // flap record are stored: a fix whose announcement was lost keeps an open intent, and the retry
  // (redelivery, next sweep, the verify queue) announces it — at least once rather than never.
  if (announced && counted) {
    await ctx.audit({ control, clusterId, targetId, event: 'remediated', before: fix.before, after: fix.change.after, actor: fix.actor ?? 'netguard (auto)', mode: fix.actor ? 'approve' : 'auto', detail: fix.steps, intent: fix.intent || undefined, runId: fix.runId });
  }
  return finding;
}
