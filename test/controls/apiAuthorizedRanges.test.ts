import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { apiAuthorizedRanges, knownGoodRanges } from '../../shared/controls/apiAuthorizedRanges';
import type { ClusterObservation, ClusterPropertyChange, PlannedChange, NoPlan } from '../../shared/controls/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function clusterFromExample(file: string, status = '200'): ArmManagedCluster {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  return example.responses[status].body as ArmManagedCluster;
}

function demistoCluster(): ArmManagedCluster {
  const list = JSON.parse(readFileSync(path.join(FIXTURES, 'third-party', 'demisto-content_AzureKubernetesServices_clusters_list_response.json'), 'utf8'));
  return list.value[0] as ArmManagedCluster;
}

function observe(cluster: ArmManagedCluster, extra: Partial<ClusterObservation> = {}): ClusterObservation {
  return { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }), ...extra };
}

function withRanges(cluster: ArmManagedCluster, ranges: string[] | undefined): ArmManagedCluster {
  const copy = structuredClone(cluster);
  copy.properties.apiServerAccessProfile = { ...(copy.properties.apiServerAccessProfile ?? {}), authorizedIPRanges: ranges };
  return copy;
}

/** Writes the planned value into a copy of the cluster, as the engine's PUT would. */
function applied(cluster: ArmManagedCluster, change: ClusterPropertyChange): ArmManagedCluster {
  const copy = structuredClone(cluster) as Record<string, unknown>;
  let node = copy;
  for (const key of change.path.slice(0, -1)) {
    node[key] = (node[key] as Record<string, unknown> | undefined) ?? {};
    node = node[key] as Record<string, unknown>;
  }
  node[change.path[change.path.length - 1]] = change.after;
  return copy as unknown as ArmManagedCluster;
}

function asChange(plan: PlannedChange | NoPlan): ClusterPropertyChange {
  if (plan.kind !== 'cluster-property') throw new Error(`expected a cluster-property change, got ${JSON.stringify(plan)}`);
  return plan;
}

const PUBLIC_GET = 'arm-aks-2026-01-01/ManagedClustersGet.json';

describe('api-authorized-ranges control', () => {
  it('is an enforced control that asks for approval by default', () => {
    expect(apiAuthorizedRanges.id).toBe('api-authorized-ranges');
    expect(apiAuthorizedRanges.severity).toBe('enforced');
    expect(apiAuthorizedRanges.defaultMode).toBe('approve');
  });

  it('finds drift on the published public cluster without authorized ranges, judged on the cluster itself', () => {
    const cluster = clusterFromExample(PUBLIC_GET);
    const [judgement, ...rest] = apiAuthorizedRanges.evaluate(observe(cluster));
    expect(rest).toHaveLength(0);
    expect(judgement.compliant).toBe(false);
    expect(judgement.control).toBe('api-authorized-ranges');
    expect(judgement.clusterId).toBe(cluster.id);
    expect(judgement.targetId).toBe(cluster.id);
    expect(judgement.tagSources).toEqual([{ archv2: '', tier: 'production' }]);
    expect(judgement.detail).toContain('clustername1');
    expect(judgement.detail).toMatch(/authorized IP ranges/);
  });

  it('finds drift on the 2026-08-01 Get example too', () => {
    const [judgement] = apiAuthorizedRanges.evaluate(observe(clusterFromExample('arm-aks-2026-08-01/ManagedClustersGet.json')));
    expect(judgement.compliant).toBe(false);
  });

  it('finds drift on the third-party list entry and keeps its odd collection id as target', () => {
    const cluster = demistoCluster();
    const [judgement] = apiAuthorizedRanges.evaluate(observe(cluster));
    expect(judgement.compliant).toBe(false);
    expect(judgement.targetId).toBe('/subscriptions/subid1/providers/Microsoft.ContainerService/managedClusters');
  });

  it.each([
    ['ManagedClustersCreate_PrivateClusterPublicFQDN.json', '200'],
    ['ManagedClustersCreate_PrivateClusterPublicFQDN.json', '201'],
    ['ManagedClustersCreate_PrivateClusterFQDNSubdomain.json', '200'],
    ['ManagedClustersCreate_PrivateClusterFQDNSubdomain.json', '201'],
  ])('accepts the published private cluster %s (%s) without any ranges', (file, status) => {
    const [judgement] = apiAuthorizedRanges.evaluate(observe(clusterFromExample(`arm-aks-2026-01-01/${file}`, status)));
    expect(judgement.compliant).toBe(true);
    expect(judgement.detail).toMatch(/private/);
  });

  it('accepts a public cluster with authorized ranges and names them', () => {
    const cluster = withRanges(clusterFromExample(PUBLIC_GET), ['203.0.113.0/24', '198.51.100.7/32']);
    const [judgement] = apiAuthorizedRanges.evaluate(observe(cluster));
    expect(judgement.compliant).toBe(true);
    expect(judgement.detail).toContain('203.0.113.0/24');
  });

  it('treats an empty list and enablePrivateCluster false as drift', () => {
    const cluster = withRanges(clusterFromExample(PUBLIC_GET), []);
    cluster.properties.apiServerAccessProfile!.enablePrivateCluster = false;
    expect(apiAuthorizedRanges.evaluate(observe(cluster))[0].compliant).toBe(false);
  });

  it('finds drift when the ranges admit every address: 0.0.0.0/0, and says which', () => {
    const [judgement] = apiAuthorizedRanges.evaluate(observe(withRanges(clusterFromExample(PUBLIC_GET), ['0.0.0.0/0'])));
    expect(judgement.compliant).toBe(false);
    expect(judgement.detail).toMatch(/0\.0\.0\.0\/0 admits every IPv4 address/);
  });

  it.each([
    [['0.0.0.0/1', '128.0.0.0/1']],
    [['128.0.0.0/1', '0.0.0.0/2', '64.0.0.0/3', '96.0.0.0/3', '10.0.0.0/8']],
    [['203.0.113.0/24', '::/1', '8000::/1']],
    [['*']],
  ])('finds drift when ranges together admit every address of a family: %j', (ranges) => {
    const cluster = withRanges(clusterFromExample(PUBLIC_GET), ranges);
    const [judgement] = apiAuthorizedRanges.evaluate(observe(cluster));
    expect(judgement.compliant).toBe(false);
    expect(judgement.detail).toMatch(/every IPv[46]/);
    expect(knownGoodRanges(cluster)).toBeUndefined();
  });

  it('stays compliant when one address is left out of the union', () => {
    const ranges = ['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3', '224.0.0.0/4', '240.0.0.0/5', '248.0.0.0/6', '252.0.0.0/7', '254.0.0.0/8', '255.0.0.0/9', '255.128.0.0/10'];
    expect(apiAuthorizedRanges.evaluate(observe(withRanges(clusterFromExample(PUBLIC_GET), ranges)))[0].compliant).toBe(true);
  });

  describe('knownGoodRanges', () => {
    it('returns the ranges of a cluster compliant through them', () => {
      expect(knownGoodRanges(withRanges(clusterFromExample(PUBLIC_GET), ['203.0.113.0/24']))).toEqual(['203.0.113.0/24']);
    });

    it('returns nothing for a private cluster, even one carrying ranges', () => {
      const cluster = withRanges(clusterFromExample('arm-aks-2026-01-01/ManagedClustersCreate_PrivateClusterPublicFQDN.json'), ['203.0.113.0/24']);
      expect(knownGoodRanges(cluster)).toBeUndefined();
    });

    it('returns nothing for a drifted cluster', () => {
      expect(knownGoodRanges(clusterFromExample(PUBLIC_GET))).toBeUndefined();
    });

    it('never records a range that admits every address', () => {
      expect(knownGoodRanges(withRanges(clusterFromExample(PUBLIC_GET), ['0.0.0.0/0', '::/0']))).toBeUndefined();
      expect(knownGoodRanges(withRanges(clusterFromExample(PUBLIC_GET), ['0.0.0.0/0', '10.1.0.0/16']))).toBeUndefined();
    });
  });

  describe('plan', () => {
    const drifted = () => clusterFromExample(PUBLIC_GET);
    const planFor = (cluster: ArmManagedCluster, extra: Partial<ClusterObservation>) => {
      const observation = observe(cluster, extra);
      return apiAuthorizedRanges.plan(apiAuthorizedRanges.evaluate(observation)[0], observation);
    };

    it('restores the baseline with the ETag that was read, and the result is compliant', () => {
      const cluster = drifted();
      const change = asChange(planFor(cluster, { baselineAuthorizedRanges: ['203.0.113.0/24'], fallbackAuthorizedRanges: ['192.0.2.0/24'] }));
      expect(change).toMatchObject({
        kind: 'cluster-property',
        clusterId: cluster.id,
        path: ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'],
        before: undefined,
        after: ['203.0.113.0/24'],
        ifMatch: 'beywbwei',
        needsPerson: false,
      });
      expect(change.summary).toMatch(/known-good/);
      expect(apiAuthorizedRanges.evaluate(observe(applied(cluster, change)))[0].compliant).toBe(true);
    });

    it('records what it replaces in before', () => {
      const change = asChange(planFor(withRanges(drifted(), []), { baselineAuthorizedRanges: ['203.0.113.0/24'] }));
      expect(change.before).toEqual([]);
    });

    it('falls back to AKS_NETGUARD_AUTHORIZED_IP_RANGES without a baseline', () => {
      const change = asChange(planFor(drifted(), { fallbackAuthorizedRanges: ['192.0.2.0/24', '2001:db8::/32'] }));
      expect(change.after).toEqual(['192.0.2.0/24', '2001:db8::/32']);
      expect(change.summary).toContain('AKS_NETGUARD_AUTHORIZED_IP_RANGES');
    });

    it('never restores a list that admits every address, not even the rest of it', () => {
      const plan = planFor(drifted(), { baselineAuthorizedRanges: ['0.0.0.0/0', '198.51.100.7/32', '::/0'] });
      expect(plan.kind).toBe('none');
      const change = asChange(planFor(drifted(), { baselineAuthorizedRanges: ['0.0.0.0/1', '128.0.0.0/1'], fallbackAuthorizedRanges: ['192.0.2.0/24'] }));
      expect(change.after).toEqual(['192.0.2.0/24']);
    });

    it('never admits more than the API server admits now: the restored list is cut to the current one', () => {
      const open = withRanges(drifted(), ['0.0.0.0/1', '128.0.0.0/1']);
      const change = asChange(planFor(open, { baselineAuthorizedRanges: ['203.0.113.0/24', '2001:db8::/32'] }));
      expect(change.after).toEqual(['203.0.113.0/24']);
      expect(planFor(open, { baselineAuthorizedRanges: ['2001:db8::/32'] }).kind).toBe('none');
    });

    it('skips a baseline made only of open ranges and uses the fallback', () => {
      const change = asChange(planFor(drifted(), { baselineAuthorizedRanges: ['0.0.0.0/0'], fallbackAuthorizedRanges: ['192.0.2.0/24'] }));
      expect(change.after).toEqual(['192.0.2.0/24']);
    });

    it('can only report without a baseline or fallback, and says why', () => {
      const plan = planFor(drifted(), {});
      expect(plan.kind).toBe('none');
      expect((plan as NoPlan).reason).toMatch(/AKS_NETGUARD_AUTHORIZED_IP_RANGES/);
      expect((plan as NoPlan).reason).toMatch(/only report/);
    });

    it('can only report when every source range is open', () => {
      expect(planFor(drifted(), { baselineAuthorizedRanges: ['::/0'], fallbackAuthorizedRanges: ['0.0.0.0/0'] }).kind).toBe('none');
    });

    it('leaves ifMatch unset when the cluster was read without an ETag, and never changes the cluster it read', () => {
      const cluster = clusterFromExample('arm-aks-2026-01-01/ManagedClustersCreate_UserAssignedNATGateway.json');
      const before = JSON.stringify(cluster);
      const change = asChange(planFor(cluster, { baselineAuthorizedRanges: ['203.0.113.0/24'] }));
      expect(change.ifMatch).toBeUndefined();
      expect(JSON.stringify(cluster)).toBe(before);
    });
  });
});
