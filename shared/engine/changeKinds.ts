// Each kind of change a control may plan: how it is written (always through the one write gate,
// shared/engine/writeGate.ts, against the state as read), what the write answers for verification,
// how two plans are recognised as the same fix, and which part of it NetGuard may make without a
// person. The compiler asks for an entry here when a kind joins PlannedChange.
import type { StartedOperation } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import { ArmError } from '../azure/errors';
import { TopologyIndex } from '../azure/topology';
import { sameId } from '../azure/ids';
import type { ChangeKind, ClusterObservation, ClusterPropertyChange, KubeNetworkPolicyChange, PlannedChange, SecurityRuleChange } from '../controls/types';
import { describeKubeChange } from '../controls/instanceMetadata';
import type { EngineContext, Run } from './context';
import { kubeClientFor } from './observeCluster';
import { assertWriteAllowed } from './writeGate';

/** Every write of a change met a newer version of its target. */
class WriteConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteConflictError';
  }
}

/**
 * The write met a newer version of the target (ARM 412, Kubernetes 409): re-read, re-judge, re-plan.
 * A Kubernetes error is known by its name and kind: the Kubernetes client is not loaded on the event path.
 */
export function isConflict(err: unknown): boolean {
  if (err instanceof ArmError) return err.status === 412;
  if (err instanceof WriteConflictError) return true;
  return err instanceof Error && err.name === 'KubeError' && (err as { kind?: unknown }).kind === 'conflict';
}

interface KindHandler<C extends PlannedChange> {
  /**
   * Makes the write (each one through the write gate) and returns the observation as the write's
   * answer shows it, when that answer is enough to verify it; undefined: re-read to verify.
   */
  apply(ctx: EngineContext, run: Run, plan: C, observation: ClusterObservation): Promise<ClusterObservation | undefined>;
  /** What the change writes where: two plans with the same key are the same fix (ETags and wording aside). */
  key(plan: C): unknown;
  /** How many writes it takes (AKS_NETGUARD_MAX_WRITES_PER_RUN counts them). */
  writes(plan: C): number;
  /** The part NetGuard may make now (all of it once approved, unless only a person can make it), or undefined. */
  writablePart(plan: C, approved: boolean): C | undefined;
  /** Why the rest needs a person. */
  personReason(plan: C): string;
}

const ALLOW_NEEDS_PERSON = 'the fix changes an existing Allow rule, which needs a person';

const securityRule: KindHandler<SecurityRuleChange> = {
  async apply(ctx, _run, plan, observation) {
    // The write gate: a rule write that would open any flow is refused here, whoever planned it.
    assertWriteAllowed(plan, { nsg: observation.topology.nsg(plan.nsgId), topology: observation.topology });
    const rule = await ctx.deps.arm.putSecurityRule(plan.nsgId, plan.ruleName, plan.after, plan.ifMatch);
    // Verified on the rule as Azure returns it after the write, in the NSG as read.
    const inv = observation.topology.inventory;
    const nsgs = inv.nsgs.map((n) => {
      if (!sameId(n.id, plan.nsgId)) return n;
      const others = (n.properties.securityRules ?? []).filter((r) => r.name.toLowerCase() !== rule.name.toLowerCase());
      return { ...n, properties: { ...n.properties, securityRules: [...others, rule] } };
    });
    return { ...observation, topology: new TopologyIndex({ ...inv, nsgs }) };
  },
  key: (p) => ['security-rule', p.nsgId.toLowerCase(), p.ruleName.toLowerCase(), p.after],
  writes: () => 1,
  writablePart: (p, approved) => (approved || !p.needsPerson ? p : undefined),
  personReason: () => ALLOW_NEEDS_PERSON,
};

const clusterProperty: KindHandler<ClusterPropertyChange> = {
  async apply(ctx, _run, plan, observation) {
    const op = await startClusterUpdate(ctx, plan, observation);
    const name = observation.cluster.name;
    ctx.deps.progress?.(`Waiting for ${name} to finish updating (AKS updates take minutes)…`);
    await ctx.deps.arm.waitForOperation(op, (s) => ctx.deps.progress?.(`  ${name}: ${s}`));
    return undefined;
  },
  key: (p) => ['cluster-property', p.clusterId.toLowerCase(), ...p.path, p.after],
  writes: () => 1,
  writablePart: (p, approved) => (approved || !p.needsPerson ? p : undefined),
  personReason: () => ALLOW_NEEDS_PERSON,
};

const kubeNetworkPolicy: KindHandler<KubeNetworkPolicyChange> = {
  async apply(ctx, run, plan, observation) {
    const kube = observation.kube;
    // The write gate, against every policy of the cluster as read (each write is judged).
    assertWriteAllowed(plan, { kubePolicies: kube && !('error' in kube) ? kube.policies : undefined });
    const { client } = await kubeClientFor(ctx, run, observation.cluster);
    let conflicts = 0;
    for (const write of plan.writes) {
      try {
        if (write.method === 'create') await client.createNetworkPolicy(write.namespace, write.after);
        else await client.replaceNetworkPolicy(write.namespace, write.name, write.after);
      } catch (err) {
        // Someone created or changed it meanwhile: the re-read that verifies judges what is there now.
        if (!isConflict(err)) throw err;
        conflicts++;
      }
    }
    if (conflicts > 0 && conflicts === plan.writes.length) throw new WriteConflictError(`every NetworkPolicy write in ${observation.cluster.name} met a newer version`);
    return undefined;
  },
  key: (p) => ['kube-network-policy', p.clusterId.toLowerCase(), p.writes.map((w) => [w.namespace, w.name, w.method, w.after])],
  writes: (p) => p.writes.length,
  // The namespaces left to a person are never written by NetGuard, approved or not.
  writablePart: (p) =>
    p.writes.length === 0
      ? undefined
      : p.leftToPerson.length === 0
        ? p
        : { ...p, leftToPerson: [], needsPerson: false, summary: describeKubeChange(p.writes, []) },
  personReason: () => 'these namespaces have egress policies of their own, which only a person may change without widening anyone\u2019s egress',
};

const HANDLERS: { [K in ChangeKind]: KindHandler<Extract<PlannedChange, { kind: K }>> } = {
  'security-rule': securityRule,
  'cluster-property': clusterProperty,
  'kube-network-policy': kubeNetworkPolicy,
};

function handlerOf(plan: PlannedChange): KindHandler<PlannedChange> {
  return HANDLERS[plan.kind] as KindHandler<PlannedChange>;
}

export const applyChange = (ctx: EngineContext, run: Run, plan: PlannedChange, observation: ClusterObservation) => handlerOf(plan).apply(ctx, run, plan, observation);
export const writesOf = (plan: PlannedChange) => handlerOf(plan).writes(plan);
export const writablePart = (plan: PlannedChange, approved: boolean) => handlerOf(plan).writablePart(plan, approved);
export const personReason = (plan: PlannedChange) => handlerOf(plan).personReason(plan);

/** Same fix on the same thing (ETags and wording aside). */
export function sameChange(a: PlannedChange, b: PlannedChange): boolean {
  return a.kind === b.kind && JSON.stringify(handlerOf(a).key(a)) === JSON.stringify(handlerOf(b).key(b));
}

/**
 * A cluster goes back exactly as it was read, with only the drifted property changed, and If-Match
 * on the ETag that was read. A list answer without an ETag is re-read first.
 */
export async function startClusterUpdate(ctx: EngineContext, plan: ClusterPropertyChange, observation: ClusterObservation): Promise<StartedOperation> {
  const arm = ctx.deps.arm;
  let cluster: ArmManagedCluster = structuredClone(observation.cluster);
  let ifMatch = plan.ifMatch ?? cluster.eTag;
  if (!ifMatch) {
    const fresh = await arm.getCluster(plan.clusterId);
    cluster = fresh.cluster;
    ifMatch = fresh.etag;
  }
  // The write gate, against the cluster that is about to be sent back (every cluster write comes here).
  assertWriteAllowed(plan, { cluster });
  setPath(cluster, plan.path, plan.after);
  // The change is named so that a lost answer can be settled by re-reading (see ArmGateway).
  return arm.startClusterUpdate(cluster, ifMatch, { path: plan.path, value: plan.after });
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (node[key] === undefined || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}
