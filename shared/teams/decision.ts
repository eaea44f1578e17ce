// Deciding an approval request: who may decide, whether the click belongs to the request NetGuard
// sent (tenant, nonce, state, expiry), the conditional state transition that lets exactly one
// decision through, and what the decision does (run the fix, record an exemption, or nothing).
// No Teams SDK here: the bot (bot.ts) turns an Action.Execute activity into a DecisionRequest and
// the result into a reply and card updates; another transport would do the same.
import type { ApprovalRecord, StateStore } from '../store/types';
import { recordApprovalDecision } from '../telemetry';
import { EXEMPTION_DAYS, formatTime, type ApprovalAction, type DecisionOutcome } from './cards';
import type { Exemption } from './channels';

/** What Engine.executeApproval does (the engine implements it; tests may pass the real Engine). */
export interface ApprovalExecutor {
  executeApproval(approval: ApprovalRecord, decidedBy: string): Promise<{ result: 'applied' | 'started' | 'gone' | 'changed' | 'failed' | 'left-to-person'; detail: string }>;
}

/** One click on an approval button, as the transport read it. */
export interface DecisionRequest {
  approvalId: string;
  action: ApprovalAction;
  /** The nonce the card carried. */
  nonce: string;
  /** The person: Entra object id (lower case) when the transport knows it, and a label for records. */
  actor: { oid?: string; label: string };
  /** The tenant the click came from, when known. */
  tenantId?: string;
}

export interface DecisionDeps {
  /** AKS_NETGUARD_APPROVERS (lower-cased object ids). */
  approvers: readonly string[];
  /** NetGuard's own tenant: decisions from any other are refused. Undefined: not checked (local work). */
  tenantId?: string;
  store: StateStore;
  /** The nonce of the card issued for the current request of an approval. */
  nonces: { currentNonce(approvalId: string): Promise<{ nonce: string; requestedAt: string } | undefined> };
  exemptions: { putExemption(exemption: Exemption): Promise<void> };
  executor: () => Promise<ApprovalExecutor>;
  clock: () => Date;
  log?: (line: string) => void;
  /** Compares the nonces (the transport's constant-time comparison). */
  sameNonce: (a: string, b: string) => boolean;
}

export type DecisionResult =
  /** Nothing was changed; `reason` is for the person who clicked. */
  | { kind: 'refused'; reason: string }
  /** The request had expired: it is now marked so; nothing else was changed. */
  | { kind: 'expired'; record: ApprovalRecord; at: string }
  /** This click decided the request. */
  | { kind: 'decided'; record: ApprovalRecord; at: string; outcome: DecisionOutcome };

/** Decides one click. Refusals are audited when they concern a known request. */
export async function decideApproval(request: DecisionRequest, deps: DecisionDeps): Promise<DecisionResult> {
  const actor = request.actor;
  const refuse = async (reason: string, about?: ApprovalRecord): Promise<DecisionResult> => {
    deps.log?.(`Approval action refused (${actor.label}): ${reason}`);
    if (about) await audit(deps, about, 'approval-refused', actor.label, reason, false);
    return { kind: 'refused', reason };
  };
  const alreadyDecided = (latest: ApprovalRecord) => {
    const by = latest.decidedBy ? ` by ${latest.decidedBy}` : '';
    const when = latest.decidedAt ? ` at ${formatTime(latest.decidedAt)}` : '';
    return refuse(`Already decided${by}${when} (${latest.state}); nothing was changed.`);
  };

  const wantTenant = deps.tenantId?.toLowerCase();
  const tenant = request.tenantId?.toLowerCase();
  if (wantTenant && tenant !== wantTenant) {
    return refuse(`NetGuard accepts decisions only from its own tenant; this click came from ${tenant ?? 'an unknown tenant'}. Nothing was changed.`);
  }

  const approval = await deps.store.getApproval(request.approvalId);
  if (!approval) return refuse(`There is no approval request "${request.approvalId}"; nothing was changed.`);

  if (!deps.approvers.length) return refuse('Nobody can approve yet: AKS_NETGUARD_APPROVERS is empty. Nothing was changed.', approval);
  if (!actor.oid || !deps.approvers.includes(actor.oid)) {
    return refuse(`You are not in AKS_NETGUARD_APPROVERS, so you cannot decide this request; nothing was changed.`, approval);
  }

  const issued = await deps.nonces.currentNonce(approval.id);
  if (!issued || !deps.sameNonce(issued.nonce, request.nonce)) {
    return refuse('This card does not match any request NetGuard sent (altered, or from an earlier request for the same finding); nothing was changed.', approval);
  }
  if (approval.state !== 'pending' || issued.requestedAt !== approval.requestedAt) return alreadyDecided(approval);

  const now = deps.clock();
  const at = now.toISOString();
  const record: ApprovalRecord = { ...approval, decidedBy: actor.label, decidedAt: at };
  if (Date.parse(approval.expiresAt) <= now.getTime()) {
    record.state = 'expired';
    if (!(await deps.store.updateApproval(record))) return alreadyDecided(approval);
    await audit(deps, record, 'approval-expired', actor.label, `Clicked ${request.action} after the request expired at ${approval.expiresAt}.`);
    return { kind: 'expired', record, at };
  }

  record.state = request.action === 'approve' ? 'approved' : request.action === 'reject' ? 'rejected' : 'exempted';
  // The conditional update is the lock: of two clicks (or two approvers) exactly one gets here.
  // A row still pending after a lost race was only touched by bookkeeping (delivered): try again.
  for (let attempt = 0; !(await deps.store.updateApproval(record)); attempt++) {
    const latest = await deps.store.getApproval(approval.id);
    if (!latest || latest.state !== 'pending' || latest.requestedAt !== approval.requestedAt || attempt >= 3) {
      return alreadyDecided(latest ?? approval);
    }
    record.etag = latest.etag;
    record.delivered = latest.delivered;
  }

  let outcome: DecisionOutcome;
  if (request.action === 'approve') {
    try {
      const executed = await (await deps.executor()).executeApproval(record, actor.label);
      outcome = { kind: executed.result, detail: executed.detail };
    } catch (err) {
      outcome = { kind: 'failed', detail: err instanceof Error ? err.message : String(err) };
    }
  } else if (request.action === 'exempt') {
    const until = new Date(now.getTime() + EXEMPTION_DAYS * 86_400_000).toISOString();
    await deps.exemptions.putExemption({ control: record.control, targetId: record.targetId, until, by: actor.label, at });
    outcome = { kind: 'exempted', until };
  } else {
    outcome = { kind: 'rejected' };
  }
  const auditEvent = record.state === 'approved' ? `approved-${outcome.kind}` : record.state;
  recordApprovalDecision(record.control, record.state, new Date(record.requestedAt), now);
  await audit(deps, record, auditEvent, actor.label, 'detail' in outcome ? outcome.detail : outcome.kind === 'exempted' ? `exempt until ${outcome.until}` : undefined);
  return { kind: 'decided', record, at, outcome };
}

/** An audit row about the request; a failed write is logged, never in the way of the decision. */
async function audit(deps: DecisionDeps, record: ApprovalRecord, event: string, actor: string, detail: string | undefined, withChange = true): Promise<void> {
  try {
    await deps.store.audit({
      at: deps.clock().toISOString(),
      control: record.control,
      clusterId: record.clusterId,
      targetId: record.targetId,
      event,
      ...(withChange ? { mode: 'approve' as const, before: record.change.before, after: record.change.after } : {}),
      actor,
      detail,
    });
  } catch (err) {
    deps.log?.(`Could not write the audit row for ${record.id}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
