// The verify queue's side of a started cluster update (Function App): still running, or re-read,
// re-judged and recorded — remediated only when the control now finds the cluster compliant.
import type { ArmGateway } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import { classifyError, describeError } from '../azure/errors';
import { sameId } from '../azure/ids';
import { TopologyIndex } from '../azure/topology';
import { CONTROLS } from '../controls/index';
import type { ClusterObservation } from '../controls/types';
import { StorageUnavailableError } from '../store/types';
import { announceFix } from './apply';
import type { EngineContext } from './context';
import type { PendingClusterUpdate } from './deferred';

export type VerifyResult = { state: 'pending' | 'remediated' | 'failed'; detail: string; retryAfterMs?: number };

export async function verifyClusterUpdate(ctx: EngineContext, update: PendingClusterUpdate): Promise<VerifyResult> {
  const base = { control: update.control, clusterId: update.clusterId, targetId: update.targetId };
  const actor = update.actor ?? 'netguard (auto)';
  const run = ctx.newRun();
  const fail = async (detail: string, event: string) => {
    await ctx.audit({ ...base, event, after: update.change.after, actor, detail });
    await ctx.record([{ control: update.control, resourceId: update.clusterId, targetId: update.targetId, status: 'error', action: 'none', detail: `${update.detail} ${detail}` }]);
    const lost = ctx.storageFailureSince(run);
    if (lost) throw new StorageUnavailableError(`The update of ${update.clusterId} failed, and storage failed while recording it: ${describeError(lost)}`, { cause: lost });
    return { state: 'failed' as const, detail };
  };
  // A look that fails transiently (the status poll and the cluster read both throttled, 5xx or
  // timed out, each after retries) says nothing about the update: look again later, as for a
  // running one (bounded by the verify queue's attempts), never report the fix failed for it.
  const unknown = (err: unknown) => ({ state: 'pending' as const, detail: `NetGuard could not look at the update (${describeError(err)}); it looks again later.` });
  let status: Awaited<ReturnType<ArmGateway['operationStatus']>>;
  try {
    // Falls back to reading the cluster when the status poll fails (ArmGateway.operationStatus).
    status = await ctx.deps.arm.operationStatus(update.operation);
  } catch (err) {
    if (classifyError(err) === 'retryable') return unknown(err);
    return fail(`The update did not succeed: ${describeError(err)}`, 'write-failed');
  }
  if (status.status === 'InProgress') return { state: 'pending', detail: 'The update is still running.', retryAfterMs: status.retryAfterMs };

  const control = CONTROLS.find((c) => c.id === update.control);
  let cluster: ArmManagedCluster;
  try {
    cluster = (await ctx.deps.arm.getCluster(update.clusterId)).cluster;
  } catch (err) {
    if (classifyError(err) === 'retryable') return unknown(err);
    throw err;
  }
  const observation: ClusterObservation = {
    cluster,
    topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }),
    fallbackAuthorizedRanges: ctx.deps.settings.authorizedIpRanges,
  };
  const judgement = control?.evaluate(observation).find((j) => sameId(j.targetId, update.targetId));
  if (!judgement || !judgement.compliant) {
    return fail(`Azure finished the update, but re-reading shows it did not take: ${judgement?.detail ?? 'no verdict'}`, 'verify-failed');
  }
  const detail = `${update.detail} NetGuard fixed it: ${update.change.summary}`;
  const verified = { control: update.control, clusterId: update.clusterId, targetId: update.targetId };
  const finding = await announceFix(ctx, { judgement: verified, detail, before: update.change.before, change: update.change, steps: update.change.summary, actor: update.actor, changedBy: update.changedBy, intent: update.intent });
  // The run that started the update has ended: the verified finding is recorded here.
  await ctx.record([finding]);
  // A fix whose records were lost is looked at again (the queue retries the message), not dropped.
  const lost = ctx.storageFailureSince(run);
  if (lost) throw new StorageUnavailableError(`The update of ${update.clusterId} took, but storage failed while recording it: ${describeError(lost)}`, { cause: lost });
  return { state: 'remediated', detail };
}
