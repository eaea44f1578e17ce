// Cluster updates take minutes. A function cannot wait that long (an Event Grid delivery, a Teams
// click), so there the engine starts the update, hands it to a queue, and a later invocation looks
// at the operation and verifies the fix. Only a verified fix is reported as remediated.
import type { StartedOperation } from '../azure/arm';
import type { ClusterPropertyChange } from '../controls/types';
import type { ControlId } from '../types';

export interface PendingClusterUpdate {
  control: ControlId;
  clusterId: string;
  targetId: string;
  operation: StartedOperation;
  change: ClusterPropertyChange;
  /** The drift as judged before the write (for the finding's detail). */
  detail: string;
  /** Who approved it, when a person did. */
  actor?: string;
  changedBy?: string;
  startedAt: string;
  /** Looks at the operation so far (1 on the first). */
  attempt: number;
  /** The audit intent row written before the update was started. */
  intent?: string;
}

export interface DeferredUpdateSink {
  /** Durably queues a look at the update after `delaySeconds`. */
  enqueue(update: PendingClusterUpdate, delaySeconds: number): Promise<void>;
}

/** Seconds between looks when ARM gives no Retry-After, and how many looks before giving up (≈ 60 min). */
export const VERIFY_DELAY_SECONDS = 30;
export const MAX_VERIFY_ATTEMPTS = 120;
