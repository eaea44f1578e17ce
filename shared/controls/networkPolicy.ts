// network-policy (advisory): the cluster runs a network policy engine, so Kubernetes NetworkPolicies
// are enforced; without one every pod can reach every other pod.
import type { ClusterObservation, Control, Judgement, NoPlan } from './types';

const ENGINES = ['azure', 'calico', 'cilium'];

function evaluate(observation: ClusterObservation): Judgement[] {
  const cluster = observation.cluster;
  const policy = cluster.properties?.networkProfile?.networkPolicy;
  const compliant = typeof policy === 'string' && ENGINES.includes(policy.trim().toLowerCase());
  return [
    {
      control: 'network-policy',
      clusterId: cluster.id,
      targetId: cluster.id,
      compliant,
      detail: compliant
        ? `${cluster.name} enforces Kubernetes network policies with ${policy}.`
        : `${cluster.name} has no network policy engine (networkPolicy is ${policy ? `"${policy}"` : 'not set'}), so NetworkPolicies are ignored and every pod can reach every other pod: enable Azure Network Policy Manager, Calico or Cilium.`,
      tagSources: [cluster.tags],
    },
  ];
}

function plan(_judgement: Judgement, observation: ClusterObservation): NoPlan {
  return {
    kind: 'none',
    reason: `network-policy is advisory: NetGuard does not change the network policy engine of ${observation.cluster.name}; enable Azure Network Policy Manager, Calico or Cilium (az aks update --network-policy) when its workloads are ready for it.`,
  };
}

export const networkPolicy: Control = {
  id: 'network-policy',
  severity: 'advisory',
  defaultMode: 'report',
  description: 'A network policy engine (Azure, Calico or Cilium) enforces Kubernetes NetworkPolicies.',
  needs: { reads: ['cluster-properties'], changes: [] },
  evaluate,
  plan,
};
