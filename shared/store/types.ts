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
  /**
   * On an `intent` row (written before each ARM write): its own id. On the row of what came of the
   * write (remediated, write-failed, update-started, verify-failed): the intent(s) it completes,
   * comma-separated when one fix took several writes.
   */
  intent?: string;
  /** The run (sweep, event delivery, approval) the write belongs to; for an event, its event id(s). */
  runId?: string;
  /**
   * On an `intent` row: the whole planned change (where it writes, not only `after`), so a later run
   * can tell whether the resource holds what this intent wrote (see openIntents).
   */
  change?: PlannedChange;
}

/**
 * Storage could not record NetGuard's intent (or failed earlier in the run), so no write was made:
 * a change NetGuard cannot record is a change it does not make.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

export interface StoredFinding extends Finding {
  at: string;
  /** First time this drift was seen (kept while it stays drifted). */
  driftSince?: string;
}

/** Stored findings of whole (control, cluster) ranges, as read at one moment. */
export interface KnownFindings {
  /** control|cluster (lower-cased) → the stored findings of that cluster under that control, by row key. */
  readonly ranges: Map<string, Map<string, StoredFinding>>;
}

export interface StateStore {
  /** Last known-good authorized IP ranges of a cluster. */
  getBaseline(clusterId: string): Promise<string[] | undefined>;
  putBaseline(clusterId: string, ranges: string[], at: Date): Promise<void>;

  /** Latest finding per control, cluster and target; returns what was stored before (if anything). */
  recordFinding(finding: Finding, at: Date): Promise<StoredFinding | undefined>;
  /**
   * The same for many findings at once (a sweep); nothing is returned. `known`: the stored findings
   * of some clusters, read ahead with findingsOf; findings of those clusters are then not read again.
   */
  recordFindings(findings: Finding[], at: Date, known?: KnownFindings): Promise<void>;
  /** Reads ahead what recordFindings would read for these controls and clusters (an event's few). */
  findingsOf?(controls: readonly ControlId[], clusterIds: string[]): Promise<KnownFindings>;
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

  /**
   * Claims an Event Grid event id for processing with a conditional insert, so of concurrent
   * deliveries exactly one gets it. Otherwise says why not: `done` when the id was handled at or
   * after `doneSince`, `processing` when another delivery claimed it at or after `leaseSince` (an
   * older claim was abandoned, e.g. by a crashed instance, and is taken over).
   */
  claimEvent(eventId: string, at: Date, window: { doneSince: Date; leaseSince: Date }): Promise<EventClaim | 'done' | 'processing'>;
  /** The event was handled: later deliveries of its id are duplicates. */
  completeEvent(claim: EventClaim, at: Date): Promise<void>;
  /** Processing failed in a way a redelivery can fix: gives the id back so the redelivery is processed. */
  releaseEvent(claim: EventClaim): Promise<void>;

  /**
   * Intent rows written at or after `since` that no other row names as completed (no remediated,
   * write-failed, update-started, … row carries their id): writes whose outcome was never recorded,
   * e.g. because storage failed right after Azure applied them. With `runId`, also the `remediated`
   * rows of that run since then (an event's earlier deliveries). Oldest first. Optional: a store
   * without it simply never finds one.
   */
  openIntents?(since: Date, runId?: string): Promise<AuditEntry[]>;

  /** Automatic fixes of one finding, for the flap guard; newest first. */
  recordRemediation(control: ControlId, targetId: string, at: Date, changedBy?: string): Promise<void>;
  recentRemediations(control: ControlId, targetId: string, since: Date): Promise<Array<{ at: string; changedBy?: string }>>;
}

/** A claim on one event id (the ledger row's ETag makes release and completion conditional). */
export interface EventClaim {
  eventId: string;
  etag: string;
}

export function approvalIdFor(control: ControlId, targetId: string): string {
  return `${control}|${targetId.toLowerCase()}`;
}
