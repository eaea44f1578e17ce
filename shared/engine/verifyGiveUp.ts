// When the verify queue stops looking at a cluster update (it kept running for MAX_VERIFY_ATTEMPTS
// looks, or could not be read that long), nobody knows whether the fix took. That is said out loud:
// an `error` finding (the status, the digest and the next sweep's diff show it), an audit row that
// completes the update's intent, and a notice to Teams saying what to check.
import { lastSegment, portalUrl } from '../azure/ids';
import { describeError } from '../azure/errors';
import type { Notice, NoticeSink } from '../notify/types';
import { StorageUnavailableError, type StateStore } from '../store/types';
import type { Finding } from '../types';
import type { PendingClusterUpdate } from './deferred';

export interface GiveUpDeps {
  store?: StateStore;
  notices?: NoticeSink;
  clock?: () => Date;
}

/** What a person should look at; the same words go into the finding and the Teams notice. */
export function whatToCheck(update: PendingClusterUpdate): string {
  const cluster = lastSegment(update.clusterId);
  return (
    `Check the cluster's provisioning state and its activity log in the portal (${portalUrl(update.clusterId)}): ` +
    `if the update is still running or failed there, AKS says why; once ${cluster} is Succeeded, the next sweep ` +
    `judges it again (and repairs or asks again if the drift is still there). Until then NetGuard does not report it fixed.`
  );
}

/**
 * Records and announces that an update could not be verified. Throws StorageUnavailableError when
 * the finding or the audit row could not be stored, so the queue retries the message rather than
 * dropping the only trace of an unverified write.
 */
export async function giveUpVerifying(update: PendingClusterUpdate, lastLook: string, deps: GiveUpDeps): Promise<Finding> {
  const at = (deps.clock ?? (() => new Date()))();
  const minutes = Math.max(1, Math.round((at.getTime() - Date.parse(update.startedAt)) / 60_000));
  const why = `NetGuard started the fix (${update.change.summary}) at ${update.startedAt} but could not verify it: after ${update.attempt} looks over about ${minutes} minutes, ${lastLook.replace(/\.$/, '')}.`;
  const finding: Finding = {
    control: update.control,
    resourceId: update.clusterId,
    targetId: update.targetId,
    status: 'error',
    action: 'none',
    detail: `${update.detail} ${why} ${whatToCheck(update)}`,
  };
  const store = deps.store;
  if (store) {
    try {
      await store.audit({
        at: at.toISOString(),
        control: update.control,
        clusterId: update.clusterId,
        targetId: update.targetId,
        event: 'verify-gave-up',
        after: update.change.after,
        actor: update.actor ?? 'netguard (auto)',
        detail: why,
        intent: update.intent,
      });
      await store.recordFindings([finding], at);
    } catch (err) {
      throw new StorageUnavailableError(`The update of ${update.clusterId} could not be verified, and storage failed while recording it: ${describeError(err)}`, { cause: err });
    }
  }
  // The notice is durable (a queue); if it cannot be queued, the message is retried too.
  const notice: Notice = { kind: 'unverified', finding, change: update.change, startedAt: update.startedAt, looks: update.attempt, changedBy: update.changedBy, at: at.toISOString() };
  await deps.notices?.enqueue(notice);
  return finding;
}
