// Approvals: asking a person (an approval record, an audit row, a Teams notice), and carrying out an
// approved fix — but only if it is still the right one: the resources are re-read (Kubernetes objects
// included, for a control that reads them), the control re-judged and re-planned, and the plan must be
// the one the person saw. The write then goes through the same path as any other (apply.ts).
import { describeError } from '../azure/errors';
import { sameId, subscriptionOf } from '../azure/ids';
import { TopologyIndex, type Inventory } from '../azure/topology';
import { CONTROLS } from '../controls/index';
import type { Control, Judgement, PlannedChange } from '../controls/types';
import type { ApprovalRecord } from '../store/types';
import { remediate } from './apply';
import { sameChange, writablePart } from './changeKinds';
import { lowerFirst, type EngineContext, type Run, type RunOptions, type TargetOutcome } from './context';
import { observeCluster } from './observeCluster';
import { observeForApproval } from './observe';

export async function requestApproval(
  ctx: EngineContext,
  run: Run,
  control: Control,
  judgement: Judgement,
  plan: PlannedChange,
  reason: string,
  options: RunOptions,
  /** What NetGuard already fixed of the same drift (verified), named in the detail. */
  fixed?: string,
): Promise<TargetOutcome> {
  const store = ctx.deps.store;
  const done = fixed ? ` NetGuard fixed part of it: ${fixed}` : '';
  if (!store) {
    if (!run.warnedNoStore) {
      run.warnedNoStore = true;
      ctx.deps.warn?.('No AzureWebJobsStorage: approvals cannot be stored, so approve acts as report.');
    }
    return { action: 'reported', detail: `${judgement.detail}${done} Needs approval (${reason}), but without storage approve acts as report: would ${lowerFirst(plan.summary)}` };
  }
  const now = ctx.clock();
  const { created, approval } = await store.requestApproval({
    control: control.id,
    clusterId: judgement.clusterId,
    targetId: judgement.targetId,
    detail: judgement.detail,
    change: plan,
    reason,
    requestedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ctx.deps.settings.approvalTtlHours * 3600_000).toISOString(),
    changedBy: options.changedBy,
  });
  if (created) {
    await ctx.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'approval-requested', after: plan, actor: 'netguard', detail: reason });
    await ctx.notify({ kind: 'approval-requested', approval });
  }
  const since = created ? '' : ` (waiting since ${approval.requestedAt})`;
  return { action: 'approval-requested', detail: `${judgement.detail}${done} Waiting for approval${since} because ${reason}: ${plan.summary}` };
}

export type ApprovalResult = { result: 'applied' | 'started' | 'gone' | 'changed' | 'failed' | 'left-to-person'; detail: string };

/**
 * Applies an approved fix, but only if it is still the right one: the resource is re-read and the
 * control re-judged; a drift that is gone or has changed is reported and nothing is applied.
 */
export async function executeApproval(ctx: EngineContext, approval: ApprovalRecord, decidedBy: string): Promise<ApprovalResult> {
  const control = CONTROLS.find((c) => c.id === approval.control);
  if (!control) return { result: 'failed', detail: `Unknown control ${approval.control}.` };
  let inventory: Inventory;
  let topology: TopologyIndex;
  try {
    // From the topology cache when it can answer (the cluster and its NSGs read live), else the whole subscription.
    const cached = await observeForApproval(ctx.deps.arm, ctx.deps.topologyCache, approval, ctx.deps.warn);
    if (cached) ({ inventory, topology } = cached);
    else {
      const sub = subscriptionOf(approval.clusterId);
      inventory = await ctx.deps.arm.readInventory(sub);
      await ctx.refreshCache(sub, inventory);
      topology = new TopologyIndex(inventory);
    }
  } catch (err) {
    return { result: 'failed', detail: `Could not re-read the resources: ${describeError(err)}` };
  }
  const cluster = inventory.clusters.find((c) => sameId(c.id, approval.clusterId));
  if (!cluster) return { result: 'gone', detail: `The cluster ${approval.clusterId} no longer exists; nothing was changed.` };
  const run = ctx.newRun();
  run.actor = decidedBy;
  run.changedBy = approval.changedBy;
  try {
    // What the control reads, read again now (its baseline, its Kubernetes objects).
    const observation = await observeCluster(ctx, run, cluster, topology, [control]);
    let judgement: Judgement | undefined;
    try {
      judgement = control.evaluate(observation).find((j) => sameId(j.targetId, approval.targetId));
    } catch (err) {
      return { result: 'failed', detail: `Could not judge it again: ${describeError(err)}` };
    }
    if (!judgement || judgement.compliant) {
      return { result: 'gone', detail: `The drift is gone${judgement ? `: ${judgement.detail}` : ''}; nothing was changed.` };
    }
    const plan = control.plan(judgement, observation);
    if (plan.kind === 'none' || !sameChange(plan, approval.change)) {
      const now = plan.kind === 'none' ? plan.reason : plan.summary;
      return { result: 'changed', detail: `The drift has changed since the request (${judgement.detail} Now: ${now}); nothing was changed. A new request follows if it is still needed.` };
    }
    const writable = writablePart(plan, true);
    // Only namespaces with egress policies of their own: NetGuard never writes there, approved or not.
    if (!writable) return { result: 'left-to-person', detail: `Nothing was changed: NetGuard does not write where only a person may make the change, approved or not. ${plan.summary}` };
    try {
      const outcome = await remediate(ctx, run, control, judgement, observation, writable, true);
      if (outcome.rest) {
        const fixed = outcome.rest.fixed ? `NetGuard fixed ${lowerFirst(outcome.rest.fixed)} ` : '';
        return { result: outcome.rest.fixed ? 'applied' : 'failed', detail: `${fixed}Still for a person (${outcome.rest.reason}): ${outcome.rest.plan.summary}` };
      }
      if (outcome.action === 'remediated') return { result: 'applied', detail: outcome.detail };
      if (outcome.started) return { result: 'started', detail: outcome.detail };
      return { result: 'failed', detail: outcome.detail };
    } catch (err) {
      return { result: 'failed', detail: `The fix failed: ${describeError(err)}` };
    }
  } finally {
    run.closeKube();
  }
}
