// What NetGuard tells people. The engine only enqueues notices; delivery (Teams) happens elsewhere,
// so the event and timer functions never load the Teams SDK and a Teams outage loses nothing.
import type { PlannedChange } from '../controls/types';
import type { ApprovalRecord } from '../store/types';
import type { Finding, RunReport } from '../types';

export type Notice =
  | { kind: 'approval-requested'; approval: ApprovalRecord }
  | { kind: 'remediated'; finding: Finding; change: PlannedChange; changedBy?: string; at: string }
  /** A started cluster update the verify queue gave up on: whether the fix took is unknown. */
  | { kind: 'unverified'; finding: Finding; change: PlannedChange; startedAt: string; looks: number; changedBy?: string; at: string }
  /**
   * A sweep's digest. A queue message holds at most 64 KiB, so a swept estate is named by its run id
   * (delivery loads the combined report from the run store); `report` is for small, ad-hoc reports.
   */
  | { kind: 'digest'; at: string; runId?: string; report?: RunReport };

export interface NoticeSink {
  /** Durably records the notice for delivery (retried until delivered; never dropped). */
  enqueue(notice: Notice): Promise<void>;
}
