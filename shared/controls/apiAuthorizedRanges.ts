// api-authorized-ranges: the API server is private, or reachable only from authorized IP ranges.
import type { ArmManagedCluster } from '../azure/armTypes';
import { AddressSet, wholeFamiliesOf } from '../net/addressSet';
import type { ClusterObservation, ClusterPropertyChange, Control, Judgement, NoPlan } from './types';

const RANGES_PATH = ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'];

/** True for a range that admits every address (0.0.0.0/0, ::/0, any /0): NetGuard never restores one. */
export function admitsEveryAddress(range: string): boolean {
  const trimmed = range.trim();
  if (trimmed === '*') return true;
  const slash = trimmed.lastIndexOf('/');
  return slash >= 0 && /^0+$/.test(trimmed.slice(slash + 1).trim());
}

/**
 * Which whole address families a list of ranges admits together ("IPv4", "IPv6"): 0.0.0.0/0, but also
 * 0.0.0.0/1 + 128.0.0.0/1 or any other union without a gap. Computed on address sets, not by spelling.
 */
export function openFamilies(ranges: readonly string[]): string[] {
  const tokens = ranges.map((r) => String(r).trim());
  const { set } = AddressSet.parse(tokens.filter((r) => r !== '*'));
  const whole = tokens.includes('*') ? [4, 6] : wholeFamiliesOf(set);
  return whole.map((f) => `IPv${f}`);
}

/** The ranges without blanks and duplicates, or nothing when together they admit a whole address family. */
function restrictiveRanges(ranges: readonly string[] | undefined): string[] {
  const kept: string[] = [];
  for (const raw of ranges ?? []) {
    const range = typeof raw === 'string' ? raw.trim() : '';
    if (range && !kept.includes(range)) kept.push(range);
  }
  // A list that opens the API server to every address is not known-good, whatever else it holds.
  return openFamilies(kept).length > 0 ? [] : kept;
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
 * A list that admits every address of a family (together, not only as one /0) is never recorded.
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
  } else if (ranges.length > 0 && openFamilies(ranges).length > 0) {
    compliant = false;
    const every = openFamilies(ranges).join(' and ');
    const single = ranges.filter(admitsEveryAddress);
    const how = single.length ? `${single.join(', ')} admits every ${every} address` : `together (${ranges.join(', ')}) they admit every ${every} address`;
    detail = `The API server of ${name} has authorized IP ranges, but ${how}, so it is open to the internet: replace them with the ranges that need access.`;
  } else if (ranges.length > 0) {
    compliant = true;
    detail = `The API server of ${name} accepts only its ${ranges.length} authorized IP range${ranges.length === 1 ? '' : 's'} (${ranges.join(', ')}).`;
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
  let [after, source] = baseline.length
    ? [baseline, 'the last known-good ranges NetGuard recorded']
    : fallback.length
      ? [fallback, 'AKS_NETGUARD_AUTHORIZED_IP_RANGES']
      : [undefined, ''];
  if (after) {
    // Never admit what the API server does not admit now: a restored list is cut to the current one.
    const admittedNow = currentRanges(cluster).length ? AddressSet.parse(currentRanges(cluster)).set : AddressSet.all();
    const wanted = AddressSet.parse(after).set;
    if (!admittedNow.containsAll(wanted)) {
      const cut = wanted.intersect(admittedNow).toCidrs();
      if (cut.length === 0) {
        return { kind: 'none', reason: `The ranges from ${source} (${after.join(', ')}) admit none of the addresses ${cluster.name} admits now, so restoring them would open it elsewhere: a person must choose the ranges.` };
      }
      after = cut;
      source = `${source}, limited to what the API server admits now`;
    }
  }
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
  // The stored baseline: the last restrictive ranges seen while compliant, restored on drift.
  needs: { reads: ['cluster-properties'], changes: ['cluster-property'], baseline: { knownGood: knownGoodRanges } },
  evaluate,
  plan,
};
