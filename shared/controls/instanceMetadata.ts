// instance-metadata: pods cannot reach the node's instance metadata service (IMDS, 169.254.169.254),
// which hands out the node's managed-identity tokens to any pod that asks. Judged per cluster in the
// sweep only: from the raw cluster (podLinkLocalAccess, the network policy engine) and, when those do
// not settle it, from the cluster's namespaces and NetworkPolicies under Kubernetes semantics
// (shared/kube/networkPolicy.ts). Pure: the engine reads the Kubernetes objects (shared/kube/access.ts).
import type { ArmManagedCluster } from '../azure/armTypes';
import {
  IMDS_ADDRESS,
  OWN_POLICY_NAME,
  judgeNamespace,
  ownPolicyObject,
  restoringOwnPolicyWidensNothing,
  isUnreadable,
  type NamespaceVerdict,
} from '../kube/networkPolicy';
import type { ClusterObservation, Control, Judgement, KubeNetworkPolicyChange, KubeNetworkPolicyWrite, NoPlan } from './types';

export const INSTANCE_METADATA = 'instance-metadata' as const;
const POLICY_ENGINES = ['azure', 'calico', 'cilium'];
/** How many open namespaces a detail names before it gives a count. */
const NAMED_NAMESPACES = 10;

/** What instance-metadata looks at: the cluster, and (when needed) its Kubernetes objects. */
export type InstanceMetadataObservation = Pick<ClusterObservation, 'cluster' | 'kube' | 'excludedNamespaces'>;

/** Judgement of this control: a Judgement whose control id is instance-metadata. */
export type InstanceMetadataJudgement = Omit<Judgement, 'control'> & { control: typeof INSTANCE_METADATA };

function linkLocalBlocked(cluster: ArmManagedCluster): boolean {
  const v = cluster.properties?.networkProfile?.podLinkLocalAccess;
  return typeof v === 'string' && v.trim().toLowerCase() === 'none';
}

function policyEngineOn(cluster: ArmManagedCluster): boolean {
  const v = cluster.properties?.networkProfile?.networkPolicy;
  return typeof v === 'string' && POLICY_ENGINES.includes(v.trim().toLowerCase());
}

/** Whether judging the cluster needs its namespaces and NetworkPolicies (so the engine reads them). */
export function needsKubernetesObjects(cluster: ArmManagedCluster): boolean {
  return !linkLocalBlocked(cluster) && policyEngineOn(cluster);
}

const DEFAULT_EXCLUDED = ['kube-system', 'kube-public', 'kube-node-lease'];

/** The verdict of every judged namespace, open ones first in name order. */
export function namespaceVerdicts(observation: InstanceMetadataObservation): NamespaceVerdict[] {
  const kube = observation.kube;
  if (!kube || 'error' in kube) return [];
  const excluded = new Set(observation.excludedNamespaces ?? DEFAULT_EXCLUDED);
  return kube.namespaces
    // A namespace being deleted takes its pods with it, and refuses new objects.
    .filter((ns) => !excluded.has(ns.name) && ns.phase !== 'Terminating')
    .map((ns) => judgeNamespace(ns.name, kube.policies))
    .sort((a, b) => a.namespace.localeCompare(b.namespace));
}

function nameSome(names: string[]): string {
  const shown = names.slice(0, NAMED_NAMESPACES).join(', ');
  return names.length > NAMED_NAMESPACES ? `${shown} and ${names.length - NAMED_NAMESPACES} more` : shown;
}

/** Why a namespace is open, in a few words. */
function whyOpen(v: NamespaceVerdict): string {
  if (v.egressPolicies.length === 0) return 'no egress policy';
  const parts: string[] = [];
  if (v.admittedBy.length) parts.push(`admitted by ${v.admittedBy.join(', ')}`);
  if (v.unisolatedPods) parts.push(`pods no egress policy selects`);
  return parts.join('; ');
}

function evaluate(observation: InstanceMetadataObservation): InstanceMetadataJudgement[] {
  const cluster = observation.cluster;
  const judged = (compliant: boolean, detail: string): InstanceMetadataJudgement[] => [
    { control: INSTANCE_METADATA, clusterId: cluster.id, targetId: cluster.id, compliant, detail, tagSources: [cluster.tags] },
  ];
  if (linkLocalBlocked(cluster)) {
    return judged(true, `${cluster.name} blocks pods from link-local addresses (podLinkLocalAccess None), so no pod can reach the instance metadata service.`);
  }
  if (!policyEngineOn(cluster)) {
    return judged(
      false,
      `Every pod of ${cluster.name} can reach the instance metadata service (${IMDS_ADDRESS}) and take the node's managed-identity tokens: it has no network policy engine, so NetworkPolicies cannot block it (see network-policy), and podLinkLocalAccess is not None.`,
    );
  }
  const kube = observation.kube;
  // The engine turns a thrown error into an `error` finding naming the cluster: the sweep goes on.
  if (!kube) throw new Error(`The namespaces and NetworkPolicies of ${cluster.name} were not read.`);
  if ('error' in kube) throw kube.error;
  const open = namespaceVerdicts(observation).filter((v) => v.open);
  if (open.length === 0) {
    return judged(true, `Every namespace of ${cluster.name} that NetGuard judges blocks egress to the instance metadata service (${IMDS_ADDRESS}:80) for every pod.`);
  }
  const described = open.slice(0, NAMED_NAMESPACES).map((v) => `${v.namespace} (${whyOpen(v)})`);
  const more = open.length > NAMED_NAMESPACES ? ` and ${open.length - NAMED_NAMESPACES} more` : '';
  return judged(
    false,
    `Pods in ${open.length} namespace(s) of ${cluster.name} can reach the instance metadata service (${IMDS_ADDRESS}:80) and take the node's managed-identity tokens: ${described.join(', ')}${more}.`,
  );
}

/** The plan in words: what NetGuard writes where, and what it leaves to a person (naming the policies). */
export function describeKubeChange(writes: readonly KubeNetworkPolicyWrite[], leftToPerson: ReadonlyArray<{ namespace: string; reason: string }>): string {
  const created = writes.filter((w) => w.method === 'create').map((w) => w.namespace);
  const restored = writes.filter((w) => w.method === 'replace').map((w) => w.namespace);
  const parts: string[] = [];
  if (created.length) parts.push(`Create the NetworkPolicy ${OWN_POLICY_NAME} (every destination but ${IMDS_ADDRESS}) in ${nameSome(created)}.`);
  if (restored.length) parts.push(`Put ${OWN_POLICY_NAME} back as NetGuard wrote it in ${nameSome(restored)}.`);
  if (leftToPerson.length) {
    const shown = leftToPerson.slice(0, NAMED_NAMESPACES).map((p) => `${p.namespace}: ${p.reason}`);
    const more = leftToPerson.length > NAMED_NAMESPACES ? ` (and ${leftToPerson.length - NAMED_NAMESPACES} more namespaces)` : '';
    parts.push(`Leave to a person — ${shown.join('; ')}${more}.`);
  }
  return parts.join(' ');
}

function plan(_judgement: Judgement, observation: InstanceMetadataObservation): KubeNetworkPolicyChange | NoPlan {
  const cluster = observation.cluster;
  if (linkLocalBlocked(cluster)) return { kind: 'none', reason: `${cluster.name} already blocks link-local addresses.` };
  if (!policyEngineOn(cluster)) {
    return {
      kind: 'none',
      reason: `NetGuard cannot block it without a network policy engine: enable one (network-policy), or set podLinkLocalAccess to None when the workloads need no link-local address.`,
    };
  }
  const open = namespaceVerdicts(observation).filter((v) => v.open);
  if (open.length === 0) return { kind: 'none', reason: `Every judged namespace of ${cluster.name} already blocks it.` };

  const writes: KubeNetworkPolicyWrite[] = [];
  const leftToPerson: Array<{ namespace: string; reason: string }> = [];
  for (const v of open) {
    if (v.foreignEgressPolicies.length > 0) {
      // An allow-most policy here would widen the egress of the pods these policies restrict.
      const what = v.admittedBy;
      leftToPerson.push({
        namespace: v.namespace,
        reason: what.length
          ? `the egress policies ${what.join(', ')} admit ${IMDS_ADDRESS}:80; add an except for ${IMDS_ADDRESS}/32 to their ipBlocks`
          : `it has egress policies (${v.foreignEgressPolicies.join(', ')}) but some pods are selected by none of them; extend them to every pod without allowing ${IMDS_ADDRESS}/32`,
      });
      continue;
    }
    if (!v.own) {
      writes.push({ namespace: v.namespace, name: OWN_POLICY_NAME, method: 'create', after: ownPolicyObject(v.namespace) });
      continue;
    }
    if (!isUnreadable(v.own) && restoringOwnPolicyWidensNothing(v.own)) {
      writes.push({
        namespace: v.namespace,
        name: OWN_POLICY_NAME,
        method: 'replace',
        resourceVersion: v.own.resourceVersion,
        before: v.own.spec,
        after: ownPolicyObject(v.namespace, v.own.resourceVersion),
      });
      continue;
    }
    leftToPerson.push({
      namespace: v.namespace,
      reason: `${OWN_POLICY_NAME} was changed, and putting it back would widen what some pods may reach; restore its except for ${IMDS_ADDRESS}/32 by hand`,
    });
  }

  const summary = describeKubeChange(writes, leftToPerson);
  const replaced = writes.filter((w) => w.method === 'replace').map((w) => ({ namespace: w.namespace, name: w.name, spec: w.before }));
  return {
    kind: 'kube-network-policy',
    clusterId: cluster.id,
    writes,
    leftToPerson,
    needsPerson: leftToPerson.length > 0,
    before: replaced.length ? replaced : undefined,
    after: writes.map((w) => w.after),
    summary,
  };
}

export const instanceMetadata: Control & {
  evaluate(observation: InstanceMetadataObservation): InstanceMetadataJudgement[];
  plan(judgement: Judgement, observation: InstanceMetadataObservation): KubeNetworkPolicyChange | NoPlan;
} = {
  id: INSTANCE_METADATA,
  severity: 'enforced',
  defaultMode: 'approve',
  description: `Pods cannot reach the instance metadata service (${IMDS_ADDRESS}): podLinkLocalAccess None, or NetworkPolicies block it in every namespace.`,
  // Its own observation: the namespaces and NetworkPolicies, read in the sweep only, and only from
  // clusters the cluster resource does not settle (no events report Kubernetes objects).
  needs: { reads: ['cluster-properties', 'kubernetes-objects'], changes: ['kube-network-policy'], kubernetesObjectsWanted: needsKubernetesObjects },
  evaluate,
  plan,
};
