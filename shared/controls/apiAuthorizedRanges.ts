// api-authorized-ranges: the API server is private, or reachable only from authorized IP ranges.
import type { ArmManagedCluster } from '../azure/armTypes';
import type { ClusterObservation, ClusterPropertyChange, Control, Judgement, NoPlan } from './types';

const RANGES_PATH = ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'];

/** True for a range that admits every address (0.0.0.0/0, ::/0, any /0): NetGuard never restores one. */
export function admitsEveryAddress(range: string): boolean {
  const trimmed = range.trim();
  if (trimmed === '*') return true;
  const slash = trimmed.lastIndexOf('/');
  return slash >= 0 && /^0+$/.test(trimmed.slice(slash + 1).trim());
}

/** The ranges without blanks, duplicates and anything that admits every address. */
function restrictiveRanges(ranges: readonly string[] | undefined): string[] {
  const kept: string[] = [];
  for (const raw of ranges ?? []) {
    const range = typeof raw === 'string' ? raw.trim() : '';
    if (range && !admitsEveryAddress(range) && !kept.includes(range)) kept.push(range);
  }
  return kept;
}

function isPrivate(cluster: ArmManagedCluster): boolean {
  return cluster.properties?.apiServerAccessProfile?.enablePrivateCluster === true;
}

function currentRanges(cluster: ArmManagedCluster): string[] {
  const ranges = cluster.properties?.apiServerAccessProfile?.authorizedIPRanges;
  return Array.isArray(ranges) ? ranges : [];
}

/**
 * The ranges to record as the cluster's known-good baseline: its authorized ranges while it is
 * compliant through them (undefined for a private cluster, which has none that matter, or a drifted one).
 * Ranges that admit every address are left out, so a baseline can never reopen the API server.
 */
export function knownGoodRanges(cluster: ArmManagedCluster): string[] | undefined {
  if (isPrivate(cluster)) return undefined;
  const kept = restrictiveRanges(currentRanges(cluster));
  return kept.length > 0 ? kept : undefined;
}

function evaluate(observation: ClusterObservation): Judgement[] {
  const cluster = observation.cluster;
  const name = cluster.name;
  const ranges = currentRanges(cluster);
  let compliant: boolean;
  let detail: string;
  if (isPrivate(cluster)) {
    compliant = true;
    detail = `The API server of ${name} is private (enablePrivateCluster), so it is not reachable from the internet.`;
  } else if (ranges.length > 0) {
    compliant = true;
    const open = ranges.filter(admitsEveryAddress);
    detail = open.length
      ? `The API server of ${name} has authorized IP ranges, but ${open.join(', ')} admits every address: replace it with the ranges that need access.`
      : `The API server of ${name} accepts only its ${ranges.length} authorized IP range${ranges.length === 1 ? '' : 's'} (${ranges.join(', ')}).`;
  } else {
    compliant = false;
    detail = `The API server of ${name} is public with no authorized IP ranges, so any address can reach it: set authorized IP ranges or make the cluster private.`;
  }
  return [
    {
      control: 'api-authorized-ranges',
      clusterId: cluster.id,
      targetId: cluster.id,
      compliant,
      detail,
      tagSources: [cluster.tags],
    },
  ];
}

function plan(_judgement: Judgement, observation: ClusterObservation): ClusterPropertyChange | NoPlan {
  const cluster = observation.cluster;
  const baseline = restrictiveRanges(observation.baselineAuthorizedRanges);
  const fallback = restrictiveRanges(observation.fallbackAuthorizedRanges);
  const [after, source] = baseline.length
    ? [baseline, 'the last known-good ranges NetGuard recorded']
    : fallback.length
      ? [fallback, 'AKS_NETGUARD_AUTHORIZED_IP_RANGES']
      : [undefined, ''];
  if (!after) {
    return {
      kind: 'none',
      reason:
        `NetGuard has no known-good ranges for ${cluster.name} and AKS_NETGUARD_AUTHORIZED_IP_RANGES is not set, ` +
        'so it can only report: set authorized IP ranges on the cluster, or set AKS_NETGUARD_AUTHORIZED_IP_RANGES to let NetGuard restore them.',
    };
  }
  return {
    kind: 'cluster-property',
    clusterId: cluster.id,
    path: [...RANGES_PATH],
    before: cluster.properties?.apiServerAccessProfile?.authorizedIPRanges,
    after,
    ifMatch: cluster.eTag,
    needsPerson: false,
    summary: `Restrict the API server of ${cluster.name} to ${after.join(', ')} (from ${source}).`,
  };
}

export const apiAuthorizedRanges: Control = {
  id: 'api-authorized-ranges',
  severity: 'enforced',
  defaultMode: 'approve',
  description: 'The API server is private, or reachable only from authorized IP ranges.',
  evaluate,
  plan,
};
