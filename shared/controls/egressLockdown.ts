// egress-lockdown (advisory): node egress leaves through a firewall (outboundType userDefinedRouting),
// not straight to the internet.
import type { ClusterObservation, Control, Judgement, NoPlan } from './types';

function evaluate(observation: ClusterObservation): Judgement[] {
  const cluster = observation.cluster;
  const outboundType = cluster.properties?.networkProfile?.outboundType;
  const compliant = typeof outboundType === 'string' && outboundType.trim().toLowerCase() === 'userdefinedrouting';
  return [
    {
      control: 'egress-lockdown',
      clusterId: cluster.id,
      targetId: cluster.id,
      compliant,
      detail: compliant
        ? `${cluster.name} sends its egress through user-defined routes (outboundType userDefinedRouting), so a firewall can filter it.`
        : `${cluster.name} sends its egress straight out (outboundType ${outboundType ? `"${outboundType}"` : 'not set, so loadBalancer'}), unfiltered: route it through Azure Firewall or another appliance with outboundType userDefinedRouting.`,
      tagSources: [cluster.tags],
    },
  ];
}

function plan(_judgement: Judgement, observation: ClusterObservation): NoPlan {
  return {
    kind: 'none',
    reason: `egress-lockdown is advisory: routing the egress of ${observation.cluster.name} through a firewall needs a route table and a firewall that NetGuard cannot choose; set them up and switch outboundType to userDefinedRouting.`,
  };
}

export const egressLockdown: Control = {
  id: 'egress-lockdown',
  severity: 'advisory',
  defaultMode: 'report',
  description: 'Node egress goes through a firewall (outboundType userDefinedRouting).',
  needs: { reads: ['cluster-properties'], changes: [] },
  evaluate,
  plan,
};
