// http-application-routing: the retired HTTP application routing add-on (a public DNS zone and an
// unauthenticated ingress for every annotated service) is absent or disabled.
import type { ArmManagedCluster } from '../azure/armTypes';
import type { ClusterObservation, ClusterPropertyChange, Control, Judgement, NoPlan } from './types';

const ADDON_KEY = 'httpapplicationrouting';

/** The add-on keys as the cluster spells them (AKS has returned more than one casing over the years). */
function addonKeysEnabled(cluster: ArmManagedCluster): string[] {
  const profiles = cluster.properties?.addonProfiles ?? {};
  return Object.keys(profiles).filter((key) => key.toLowerCase() === ADDON_KEY && profiles[key]?.enabled === true);
}

function evaluate(observation: ClusterObservation): Judgement[] {
  const cluster = observation.cluster;
  const enabled = addonKeysEnabled(cluster);
  return [
    {
      control: 'http-application-routing',
      clusterId: cluster.id,
      targetId: cluster.id,
      compliant: enabled.length === 0,
      detail: enabled.length
        ? `${cluster.name} has the HTTP application routing add-on enabled, which publishes services through an unauthenticated public ingress: disable it and use the application routing add-on or another ingress controller.`
        : `${cluster.name} does not use the HTTP application routing add-on.`,
      tagSources: [cluster.tags],
    },
  ];
}

function plan(_judgement: Judgement, observation: ClusterObservation): ClusterPropertyChange | NoPlan {
  const cluster = observation.cluster;
  // One key per write; a second casing, if a cluster ever had both, is caught by the re-evaluation.
  const [key] = addonKeysEnabled(cluster);
  if (!key) return { kind: 'none', reason: `The HTTP application routing add-on of ${cluster.name} is already disabled.` };
  return {
    kind: 'cluster-property',
    clusterId: cluster.id,
    path: ['properties', 'addonProfiles', key, 'enabled'],
    before: true,
    after: false,
    ifMatch: cluster.eTag,
    needsPerson: false,
    summary: `Disable the HTTP application routing add-on of ${cluster.name} (addonProfiles.${key}.enabled → false).`,
  };
}

export const httpApplicationRouting: Control = {
  id: 'http-application-routing',
  severity: 'enforced',
  defaultMode: 'approve',
  description: 'The HTTP application routing add-on is absent or disabled.',
  needs: { reads: ['cluster-properties'], changes: ['cluster-property'] },
  evaluate,
  plan,
};
