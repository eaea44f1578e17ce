// service-mesh (advisory): the Istio-based service mesh add-on runs, giving mutual TLS between services.
import type { ClusterObservation, Control, Judgement, NoPlan } from './types';

function evaluate(observation: ClusterObservation): Judgement[] {
  const cluster = observation.cluster;
  const mode = cluster.properties?.serviceMeshProfile?.mode;
  const compliant = typeof mode === 'string' && mode.trim().toLowerCase() === 'istio';
  return [
    {
      control: 'service-mesh',
      clusterId: cluster.id,
      targetId: cluster.id,
      compliant,
      detail: compliant
        ? `${cluster.name} runs the Istio-based service mesh add-on.`
        : `${cluster.name} has no service mesh (serviceMeshProfile.mode is ${mode ? `"${mode}"` : 'not set'}), so traffic between services is neither authenticated nor encrypted by the mesh: enable the Istio add-on (az aks mesh enable).`,
      tagSources: [cluster.tags],
    },
  ];
}

function plan(_judgement: Judgement, observation: ClusterObservation): NoPlan {
  return {
    kind: 'none',
    reason: `service-mesh is advisory: NetGuard does not install a mesh on ${observation.cluster.name}; enable the Istio add-on (az aks mesh enable) and onboard the workloads when they are ready.`,
  };
}

export const serviceMesh: Control = {
  id: 'service-mesh',
  severity: 'advisory',
  defaultMode: 'report',
  description: 'The Istio-based service mesh add-on is enabled (serviceMeshProfile.mode Istio).',
  needs: { reads: ['cluster-properties'], changes: [] },
  evaluate,
  plan,
};
