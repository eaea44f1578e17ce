// What NetGuard reads back from storage (table rows, queue messages) is checked with zod before the
// code relies on it, as the settings are: a row or message written by an older version, edited by
// hand or damaged fails here with a message that names it, instead of somewhere deep in the engine
// as an `undefined`. The schemas check the fields the code reads and keep any others (passthrough),
// so a field added later is not dropped on its way through an older reader.
import { z } from 'zod';
import type { StartedOperation } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import type { CachedCluster, CachedSubnet } from '../azure/topologyCache';
import type { ClusterPropertyChange, KubeNetworkPolicyChange, PlannedChange, SecurityRuleChange } from '../controls/types';
import type { PendingClusterUpdate } from '../engine/deferred';
import { CONTROL_IDS, MODES, type Finding, type FindingAction, type FindingStatus, type RunReport, type RunSummary } from '../types';
import type { ApprovalRecord, ApprovalState, AuditEntry, StoredFinding } from './types';

/** True when A and B are the same union: a schema's list of values cannot drift from its type. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const FINDING_STATUSES = ['compliant', 'drift', 'exempt', 'error'] as const;
export const FINDING_ACTIONS = ['none', 'remediated', 'approval-requested', 'reported', 'skipped'] as const;
export const APPROVAL_STATES = ['pending', 'approved', 'rejected', 'exempted', 'expired', 'superseded'] as const;
const _statuses: Same<FindingStatus, (typeof FINDING_STATUSES)[number]> = true;
const _actions: Same<FindingAction, (typeof FINDING_ACTIONS)[number]> = true;
const _states: Same<ApprovalState, (typeof APPROVAL_STATES)[number]> = true;

export const controlIdSchema = z.enum(CONTROL_IDS);
export const modeSchema = z.enum(MODES);

// ---------------------------------------------------------------- findings and reports

export const findingSchema: z.ZodType<Finding, z.ZodTypeDef, unknown> = z
  .object({
    control: controlIdSchema,
    resourceId: z.string(),
    targetId: z.string(),
    status: z.enum(FINDING_STATUSES),
    action: z.enum(FINDING_ACTIONS),
    detail: z.string(),
  })
  .passthrough();

export const storedFindingSchema: z.ZodType<StoredFinding, z.ZodTypeDef, unknown> = z
  .object({
    control: controlIdSchema,
    resourceId: z.string(),
    targetId: z.string(),
    status: z.enum(FINDING_STATUSES),
    action: z.enum(FINDING_ACTIONS),
    detail: z.string(),
    at: z.string(),
    driftSince: z.string().optional(),
  })
  .passthrough();

const count = z.number().int().nonnegative();
const runSummarySchema: z.ZodType<RunSummary, z.ZodTypeDef, unknown> = z
  .object({ resources: count, drift: count, remediated: count, approvalRequested: count, exempt: count, errors: count })
  .passthrough();

export const runReportSchema: z.ZodType<RunReport, z.ZodTypeDef, unknown> = z.object({ findings: z.array(findingSchema), summary: runSummarySchema }).passthrough();

// ---------------------------------------------------------------- planned changes

const securityRulePropertiesSchema = z
  .object({ protocol: z.string(), access: z.string(), priority: z.number(), direction: z.string() })
  .passthrough();

const securityRuleChangeSchema: z.ZodType<SecurityRuleChange, z.ZodTypeDef, unknown> = z
  .object({
    kind: z.literal('security-rule'),
    nsgId: z.string(),
    ruleName: z.string(),
    ifMatch: z.string().optional(),
    before: securityRulePropertiesSchema.optional(),
    after: securityRulePropertiesSchema,
    needsPerson: z.boolean(),
    summary: z.string(),
  })
  .passthrough();

const clusterPropertyChangeSchema: z.ZodType<ClusterPropertyChange, z.ZodTypeDef, unknown> = z
  .object({
    kind: z.literal('cluster-property'),
    clusterId: z.string(),
    path: z.array(z.string()).min(1),
    // `before` and `after` are any JSON (ranges, a profile, …); the cluster-property write reads them as such.
    before: z.unknown(),
    after: z.unknown(),
    ifMatch: z.string().optional(),
    needsPerson: z.boolean(),
    summary: z.string(),
  })
  // zod types an unknown field as optional; ClusterPropertyChange has them always (possibly undefined).
  .passthrough() as z.ZodType<ClusterPropertyChange, z.ZodTypeDef, unknown>;

const kubeNetworkPolicyChangeSchema: z.ZodType<KubeNetworkPolicyChange, z.ZodTypeDef, unknown> = z
  .object({
    kind: z.literal('kube-network-policy'),
    clusterId: z.string(),
    writes: z.array(
      z
        .object({
          namespace: z.string(),
          name: z.string(),
          method: z.enum(['create', 'replace']),
          resourceVersion: z.string().optional(),
          before: z.unknown(),
          after: z.record(z.unknown()),
        })
        .passthrough(),
    ),
    leftToPerson: z.array(z.object({ namespace: z.string(), reason: z.string() }).passthrough()),
    needsPerson: z.boolean(),
    before: z.unknown(),
    after: z.unknown(),
    summary: z.string(),
  })
  .passthrough() as z.ZodType<KubeNetworkPolicyChange, z.ZodTypeDef, unknown>;

/** Every kind of PlannedChange has a schema: a new kind fails to compile here until it gets one. */
const CHANGE_SCHEMAS: { [K in PlannedChange['kind']]: z.ZodType<Extract<PlannedChange, { kind: K }>, z.ZodTypeDef, unknown> } = {
  'security-rule': securityRuleChangeSchema,
  'cluster-property': clusterPropertyChangeSchema,
  'kube-network-policy': kubeNetworkPolicyChangeSchema,
};

export const plannedChangeSchema: z.ZodType<PlannedChange, z.ZodTypeDef, unknown> = z.unknown().transform((value, ctx) => {
  const kind = typeof value === 'object' && value !== null ? (value as { kind?: unknown }).kind : undefined;
  if (typeof kind !== 'string' || !Object.hasOwn(CHANGE_SCHEMAS, kind)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['kind'], message: `not a kind of change NetGuard plans: ${JSON.stringify(kind)}` });
    return z.NEVER;
  }
  const parsed = CHANGE_SCHEMAS[kind as PlannedChange['kind']].safeParse(value);
  // The change as it was written, not zod's copy (which puts the checked keys first): changes are
  // compared as JSON (the engine's "same change" test), so their key order must survive the store.
  if (parsed.success) return value as PlannedChange;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: z.ZodIssueCode.custom, path: issue.path, message: issue.message });
  return z.NEVER;
});

// ---------------------------------------------------------------- approvals and audit

export const approvalRecordSchema: z.ZodType<ApprovalRecord, z.ZodTypeDef, unknown> = z
  .object({
    id: z.string(),
    control: controlIdSchema,
    clusterId: z.string(),
    targetId: z.string(),
    state: z.enum(APPROVAL_STATES),
    detail: z.string(),
    change: plannedChangeSchema,
    reason: z.string(),
    requestedAt: z.string(),
    expiresAt: z.string(),
    decidedBy: z.string().optional(),
    decidedAt: z.string().optional(),
    changedBy: z.string().optional(),
    delivered: z.boolean().optional(),
    etag: z.string().optional(),
  })
  .passthrough();

export const auditEntrySchema: z.ZodType<AuditEntry, z.ZodTypeDef, unknown> = z
  .object({
    at: z.string(),
    control: controlIdSchema,
    clusterId: z.string(),
    targetId: z.string(),
    event: z.string(),
    mode: modeSchema.optional(),
    before: z.unknown(),
    after: z.unknown(),
    actor: z.string(),
    detail: z.string().optional(),
    intent: z.string().optional(),
    runId: z.string().optional(),
    /** On an intent row: the whole planned change, so a later run can tell its own unrecorded fix. */
    change: plannedChangeSchema.optional(),
  })
  .passthrough();

// ---------------------------------------------------------------- the verify queue

const startedOperationSchema: z.ZodType<StartedOperation, z.ZodTypeDef, unknown> = z
  .object({ resourceId: z.string(), statusUrl: z.string().optional(), retryAfterMs: z.number().optional(), followByReading: z.boolean().optional() })
  .passthrough();

export const pendingClusterUpdateSchema: z.ZodType<PendingClusterUpdate, z.ZodTypeDef, unknown> = z
  .object({
    control: controlIdSchema,
    clusterId: z.string(),
    targetId: z.string(),
    operation: startedOperationSchema,
    change: plannedChangeSchema.refine((c): c is ClusterPropertyChange => c.kind === 'cluster-property', { message: 'not a cluster-property change' }),
    detail: z.string(),
    actor: z.string().optional(),
    changedBy: z.string().optional(),
    startedAt: z.string(),
    attempt: z.number().int().positive(),
    intent: z.string().optional(),
  })
  .passthrough();

// ---------------------------------------------------------------- the topology cache

const armClusterSchema: z.ZodType<ArmManagedCluster, z.ZodTypeDef, unknown> = z
  .object({
    id: z.string(),
    name: z.string(),
    location: z.string(),
    tags: z.record(z.string()).optional(),
    properties: z
      .object({ agentPoolProfiles: z.array(z.object({ name: z.string() }).passthrough()).optional() })
      .passthrough(),
  })
  .passthrough() as z.ZodType<ArmManagedCluster, z.ZodTypeDef, unknown>; // the rest of the ARM shape is as ARM returned it

export const cachedClusterSchema: z.ZodType<CachedCluster, z.ZodTypeDef, unknown> = z.object({ cluster: armClusterSchema, subnetIds: z.array(z.string()) }).passthrough();

export const cachedSubnetSchema: z.ZodType<CachedSubnet, z.ZodTypeDef, unknown> = z
  .object({ id: z.string(), vnetId: z.string(), prefixes: z.array(z.string()), nsgId: z.string().optional(), vnetSpace: z.array(z.string()), clusterIds: z.array(z.string()) })
  .passthrough();

// ---------------------------------------------------------------- reading

/**
 * `value` checked against `schema`, or an error that says what was read and each problem with its
 * path, e.g. "Unreadable approvals row x|y (state: Invalid enum value …)".
 */
export function parseStored<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`)
    .join('; ');
  throw new UnreadableRecordError(`${what} (${problems})`);
}

/** A stored row or queue message that does not have the shape NetGuard writes. */
export class UnreadableRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreadableRecordError';
  }
}
