// NetGuard's state, as the engine sees it. The Azure Tables implementation is in tables.ts.
import type { PlannedChange } from '../controls/types';
import type { ControlId, Finding, Mode } from '../types';

export type ApprovalState = 'pending' | 'approved' | 'rejected' | 'exempted' | 'expired' | 'superseded';

export interface ApprovalRecord {
  /** Stable id derived from control + lower-cased target id (so a finding never gets two requests). */
  id: string;
  control: ControlId;
  clusterId: string;
  targetId: string;
  state: ApprovalState;
  detail: string;
  change: PlannedChange;
  /** Why a person is needed (mode approve, a narrowing change, the write cap, a flapping finding). */
  reason: string;
  requestedAt: string;
  expiresAt: string;
  decidedBy?: string;
  decidedAt?: string;
  /** Who last changed the resource, when known (from event claims). */
  changedBy?: string;
  /** Teams bookkeeping (later issue): where the card was delivered. */
  delivered?: boolean;
  /** Optimistic-concurrency token of the row. */
  etag?: string;
}

export interface AuditEntry {
  at: string;
  control: ControlId;
  clusterId: string;
  targetId: string;
  /** e.g. "remediated", "approval-requested", "approved", "rejected", "write-failed" */
  event: string;
  mode?: Mode;
  before?: unknown;
  after?: unknown;
  /** "netguard (auto)", or the approver's name/object id. */
  actor: string;
  detail?: string;
}

export interface StoredFinding extends Finding {
  at: string;
  /** First time this drift was seen (kept while it stays drifted). */
  driftSince?: string;
}

export interface StateStore {
  /** Last known-good authorized IP ranges of a cluster. */
  getBaseline(clusterId: string): Promise<string[] | undefined>;
  putBaseline(clusterId: string, ranges: string[], at: Date): Promise<void>;

  /** Latest finding per control, cluster and target; returns what was stored before (if anything). */
  recordFinding(finding: Finding, at: Date): Promise<StoredFinding | undefined>;
  /** The same for many findings at once (a sweep); nothing is returned. */
  recordFindings(findings: Finding[], at: Date): Promise<void>;
  listFindings(): Promise<StoredFinding[]>;

  /**
   * Creates a pending approval unless one is already pending for the same control and target
   * (conditional insert: two concurrent callers get one row). Returns the pending row either way.
   */
  requestApproval(input: Omit<ApprovalRecord, 'id' | 'state' | 'etag'>): Promise<{ created: boolean; approval: ApprovalRecord }>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  listApprovals(state?: ApprovalState): Promise<ApprovalRecord[]>;
  /** Conditional update on the row's ETag; returns false when someone else changed it first. */
  updateApproval(record: ApprovalRecord): Promise<boolean>;

  audit(entry: AuditEntry): Promise<void>;
  listAudit(): Promise<AuditEntry[]>;

  /** True when this Event Grid event id was processed at or after `since`. */
  eventSeenSince(eventId: string, since: Date): Promise<boolean>;
  markEventSeen(eventId: string, at: Date): Promise<void>;

  /** Automatic fixes of one finding, for the flap guard; newest first. */
  recordRemediation(control: ControlId, targetId: string, at: Date, changedBy?: string): Promise<void>;
  recentRemediations(control: ControlId, targetId: string, since: Date): Promise<Array<{ at: string; changedBy?: string }>>;
}

export function approvalIdFor(control: ControlId, targetId: string): string {
  return `${control}|${targetId.toLowerCase()}`;
}
