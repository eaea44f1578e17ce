// The write gate: every write NetGuard plans passes through here just before it is sent, whatever
// path planned it (sweep, event, approval, verify queue). It computes the state after the write from
// the state as read (not from what the plan says "before" was) and refuses the write if it would open
// anything. "Never widen" is then a property of this one function, not of each control.
//
// - A security rule: the NSG's rules before and after are compared with the exact access comparison
//   (shared/net/accessDiff.ts) over every flow — both directions, every protocol, address and port —
//   once for each virtual network the NSG guards (the VirtualNetwork tag differs per VNet).
// - A cluster property: only paths whose meaning the gate knows may be written, each with its own
//   definition of "narrower"; any other path is refused (fail closed).
// - A NetworkPolicy (instance-metadata): only NetGuard's own policy, exactly as NetGuard writes it,
//   created in a namespace that has no egress-isolating policy as read (from "everything allowed" to
//   "everything but IMDS"), or put back over NetGuard's policy as read when that widens nothing.
//   Anything else is refused.
//
// Each kind of change has its rule in GATE_RULES; the compiler asks for one when a kind is added.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../azure/armTypes';
import { idKey, lastSegment, sameId } from '../azure/ids';
import type { TopologyIndex } from '../azure/topology';
import type { ChangeKind, ClusterPropertyChange, KubeNetworkPolicyChange, PlannedChange, SecurityRuleChange } from '../controls/types';
import { OWN_POLICY_NAME, isUnreadable, judgeNamespace, ownPolicyObject, restoringOwnPolicyWidensNothing, type ObservedPolicy } from '../kube/networkPolicy';
import { compareNsgAccess, describeFlowBox } from '../net/accessDiff';
import { AddressSet, tryParseAddressPrefix, wholeFamiliesOf } from '../net/addressSet';
import { rulesOfNsg } from '../net/nsgEvaluator';

/** A planned write the gate refused: it is not made; the finding becomes `error` with this message. */
export class WriteRefusedError extends Error {
  constructor(readonly reason: string) {
    super(`NetGuard refused its own write because ${reason}; nothing was changed.`);
    this.name = 'WriteRefusedError';
  }
}

export type GateVerdict = { allowed: true } | { allowed: false; reason: string };

/** What the gate compares against: the resources as NetGuard read them. */
export interface GateState {
  /** For a security rule: the NSG as read, and where it sits in the network. */
  nsg?: ArmNetworkSecurityGroup;
  topology?: TopologyIndex;
  /** For a cluster property: the cluster as read (the write sends it back with one property changed). */
  cluster?: ArmManagedCluster;
  /** For NetworkPolicies: every policy of the cluster as read (all namespaces). */
  kubePolicies?: readonly ObservedPolicy[];
}

const refuse = (reason: string): GateVerdict => ({ allowed: false, reason });
const ALLOWED: GateVerdict = { allowed: true };

/** The rules of the NSG once the planned rule is written (created, or replaced by name). */
export function rulesAfter(nsg: ArmNetworkSecurityGroup, plan: SecurityRuleChange): ArmSecurityRule[] {
  const custom = nsg.properties?.securityRules ?? [];
  const written: ArmSecurityRule = { name: plan.ruleName, id: `${nsg.id}/securityRules/${plan.ruleName}`, properties: plan.after };
  const others = custom.filter((r) => String(r.name).toLowerCase() !== plan.ruleName.toLowerCase());
  return rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: [...others, written] } });
}

/** The VirtualNetwork spaces the NSG's rules are read against: one per VNet whose subnets it guards. */
function vnetSpacesOf(nsg: ArmNetworkSecurityGroup, topology?: TopologyIndex): AddressSet[] {
  const spaces = new Map<string, AddressSet>();
  if (topology) {
    const subnetIds = new Set((nsg.properties?.subnets ?? []).map((s) => idKey(s.id)));
    for (const vnet of topology.inventory.vnets) {
      const guarded = (vnet.properties?.subnets ?? []).some((s) => subnetIds.has(idKey(s.id)) || sameId(s.properties?.networkSecurityGroup?.id, nsg.id));
      if (guarded) spaces.set(idKey(vnet.id), AddressSet.parse(topology.virtualNetworkSpace(vnet)).set);
    }
  }
  // Unknown surroundings: the VirtualNetwork tag is left wholly unknown (every answer is tried).
  if (spaces.size === 0) spaces.set('', AddressSet.empty());
  return [...spaces.values()];
}

function judgeSecurityRule(plan: SecurityRuleChange, state: GateState): GateVerdict {
  const nsg = state.nsg;
  if (!nsg || !sameId(nsg.id, plan.nsgId)) return refuse(`the NSG ${lastSegment(plan.nsgId)} as read is not at hand to compare the rule ${plan.ruleName} against`);
  const before = rulesOfNsg(nsg);
  const after = rulesAfter(nsg, plan);
  for (const virtualNetwork of vnetSpacesOf(nsg, state.topology)) {
    const diff = compareNsgAccess(before, after, { virtualNetwork }, { maxWitnesses: 1 });
    if (diff.tooComplex) return refuse(`the rule ${plan.ruleName} in the NSG ${nsg.name} cannot be proven not to widen access: ${diff.tooComplex}`);
    if (diff.widened.length > 0) {
      return refuse(`writing the rule ${plan.ruleName} in the NSG ${nsg.name} would allow traffic that is denied now: ${describeFlowBox(diff.widened[0])}`);
    }
  }
  return ALLOWED;
}

function valueAt(target: unknown, path: readonly string[]): unknown {
  let node = target;
  for (const key of path) node = node === null || node === undefined ? undefined : (node as Record<string, unknown>)[key];
  return node;
}

/** The addresses an authorized IP range list admits: an empty or absent list admits every address. */
export function admittedByAuthorizedRanges(ranges: unknown): { admitted: AddressSet; invalid: string[] } {
  const list = Array.isArray(ranges) ? ranges.map(String) : [];
  if (list.length === 0) return { admitted: AddressSet.all(), invalid: [] };
  const parsed = AddressSet.parse(list);
  return { admitted: parsed.set, invalid: parsed.invalid };
}


/** Each writable cluster path, with what "no wider than before" means for it. */
const CLUSTER_PATHS: Array<{ matches: (path: readonly string[]) => boolean; judge: (before: unknown, after: unknown, cluster: ArmManagedCluster) => GateVerdict }> = [
  {
    // The API server's authorized ranges: the addresses admitted after must be a subset of those
    // admitted before; a list that admits a whole address family reopens it and is never written.
    matches: (p) => p.length === 3 && p[0] === 'properties' && p[1] === 'apiServerAccessProfile' && p[2] === 'authorizedIPRanges',
    judge: (before, after, cluster) => {
      if (!Array.isArray(after) || after.length === 0) return refuse(`an empty authorized IP range list would open the API server of ${cluster.name} to every address`);
      if (after.some((r) => typeof r !== 'string' || !tryParseAddressPrefix(r))) return refuse(`the authorized IP ranges planned for ${cluster.name} contain a value that is not an IP range`);
      const next = AddressSet.fromPrefixes(after as string[]);
      if (wholeFamiliesOf(next).length > 0) return refuse(`the authorized IP ranges planned for ${cluster.name} (${(after as string[]).join(', ')}) together admit every address`);
      const { admitted } = admittedByAuthorizedRanges(before);
      const opened = next.subtract(admitted);
      if (!opened.isEmpty()) return refuse(`the authorized IP ranges planned for ${cluster.name} would admit ${opened.toString()}, which the API server does not admit now`);
      return ALLOWED;
    },
  },
  {
    // The retired HTTP application routing add-on: the only write is switching it off.
    matches: (p) => p.length === 4 && p[0] === 'properties' && p[1] === 'addonProfiles' && p[2].toLowerCase() === 'httpapplicationrouting' && p[3] === 'enabled',
    judge: (_before, after, cluster) => (after === false ? ALLOWED : refuse(`the planned write would enable the HTTP application routing add-on of ${cluster.name}`)),
  },
];

function judgeClusterProperty(plan: ClusterPropertyChange, state: GateState): GateVerdict {
  const cluster = state.cluster;
  if (!cluster || !sameId(cluster.id, plan.clusterId)) return refuse(`the cluster ${lastSegment(plan.clusterId)} as read is not at hand to compare the change against`);
  const rule = CLUSTER_PATHS.find((r) => r.matches(plan.path));
  if (!rule) return refuse(`NetGuard does not know whether changing ${plan.path.join('.')} of ${cluster.name} can open access, so it never writes it`);
  // "Before" is the cluster as read, not what the plan remembers: the write replaces what is there.
  return rule.judge(valueAt(cluster, plan.path), plan.after, cluster);
}

/** Same JSON, whatever the key order. */
function sameJson(a: unknown, b: unknown): boolean {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function judgeKubeNetworkPolicy(plan: KubeNetworkPolicyChange, state: GateState): GateVerdict {
  const policies = state.kubePolicies;
  if (!policies) return refuse(`the NetworkPolicies of ${lastSegment(plan.clusterId)} as read are not at hand to compare the change against`);
  for (const write of plan.writes) {
    const where = `${write.name} in the namespace ${write.namespace} of ${lastSegment(plan.clusterId)}`;
    // Only NetGuard's own policy, exactly as NetGuard writes it (the resourceVersion aside).
    if (write.name !== OWN_POLICY_NAME) return refuse(`the NetworkPolicy ${where} is not NetGuard's own, and NetGuard writes no other`);
    const expected = ownPolicyObject(write.namespace, write.method === 'replace' ? write.resourceVersion : undefined);
    if (!sameJson(write.after, expected)) return refuse(`the NetworkPolicy ${where} is not the policy NetGuard writes (every destination but the instance metadata service)`);
    const verdict = judgeNamespace(write.namespace, policies);
    if (write.method === 'create') {
      // From "everything allowed" to "everything but IMDS": only where no policy isolates egress yet.
      if (verdict.egressPolicies.length > 0) {
        return refuse(`creating ${where} could widen the egress of pods that the egress policies ${verdict.egressPolicies.join(', ')} restrict`);
      }
      continue;
    }
    const own = verdict.own;
    if (!own) return refuse(`${where} is to be put back, but it is not there as read`);
    if (verdict.foreignEgressPolicies.length > 0) {
      return refuse(`putting ${where} back could widen the egress of pods that the egress policies ${verdict.foreignEgressPolicies.join(', ')} restrict`);
    }
    if (isUnreadable(own) || !restoringOwnPolicyWidensNothing(own)) return refuse(`putting ${where} back would widen what some pods may reach (someone narrowed it)`);
    if (own.resourceVersion !== write.resourceVersion) return refuse(`${where} changed since it was judged (resourceVersion ${own.resourceVersion}, planned on ${write.resourceVersion})`);
  }
  return ALLOWED;
}

/** The write gate's rule for each kind of change. */
const GATE_RULES: { [K in ChangeKind]: (plan: Extract<PlannedChange, { kind: K }>, state: GateState) => GateVerdict } = {
  'security-rule': judgeSecurityRule,
  'cluster-property': judgeClusterProperty,
  'kube-network-policy': judgeKubeNetworkPolicy,
};

/** Whether a planned write may be made: it must leave everything that is closed now closed. */
export function judgeWrite(plan: PlannedChange, state: GateState): GateVerdict {
  const rule = Object.prototype.hasOwnProperty.call(GATE_RULES, plan.kind) ? (GATE_RULES[plan.kind] as (p: PlannedChange, s: GateState) => GateVerdict) : undefined;
  if (!rule) return refuse(`NetGuard does not know the kind of change "${String((plan as { kind?: unknown }).kind)}", so it never makes it`);
  return rule(plan, state);
}

/** Throws WriteRefusedError unless the gate allows the write. */
export function assertWriteAllowed(plan: PlannedChange, state: GateState): void {
  const verdict = judgeWrite(plan, state);
  if (!verdict.allowed) throw new WriteRefusedError(verdict.reason);
}
