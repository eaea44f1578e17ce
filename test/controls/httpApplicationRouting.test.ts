import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { httpApplicationRouting } from '../../shared/controls/httpApplicationRouting';
import type { ClusterObservation, ClusterPropertyChange, NoPlan, PlannedChange } from '../../shared/controls/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');
const DEMISTO = path.join(FIXTURES, 'third-party', 'demisto-content_AzureKubernetesServices_clusters_list_response.json');

function clusterFromExample(file: string, status = '200'): ArmManagedCluster {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  return example.responses[status].body as ArmManagedCluster;
}

function demistoCluster(): ArmManagedCluster {
  return JSON.parse(readFileSync(DEMISTO, 'utf8')).value[0] as ArmManagedCluster;
}

function observe(cluster: ArmManagedCluster): ClusterObservation {
  return { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }) };
}

function withAddon(cluster: ArmManagedCluster, key: string, enabled: boolean | undefined): ArmManagedCluster {
  const copy = structuredClone(cluster);
  copy.properties.addonProfiles = { ...(copy.properties.addonProfiles ?? {}), [key]: { enabled, config: { HTTPApplicationRoutingZoneName: 'zone' } } };
  return copy;
}

/** Writes the planned value into a copy of the cluster, as the engine's PUT would. */
function applied(cluster: ArmManagedCluster, change: ClusterPropertyChange): ArmManagedCluster {
  const copy = structuredClone(cluster) as Record<string, unknown>;
  let node = copy;
  for (const key of change.path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[change.path[change.path.length - 1]] = change.after;
  return copy as unknown as ArmManagedCluster;
}

function asChange(plan: PlannedChange | NoPlan): ClusterPropertyChange {
  if (plan.kind !== 'cluster-property') throw new Error(`expected a cluster-property change, got ${JSON.stringify(plan)}`);
  return plan;
}

function planFor(cluster: ArmManagedCluster): PlannedChange | NoPlan {
  const observation = observe(cluster);
  return httpApplicationRouting.plan(httpApplicationRouting.evaluate(observation)[0], observation);
}

const PUBLIC_GET = 'arm-aks-2026-01-01/ManagedClustersGet.json';

describe('http-application-routing control', () => {
  it('is an enforced control that asks for approval by default', () => {
    expect(httpApplicationRouting.id).toBe('http-application-routing');
    expect(httpApplicationRouting.severity).toBe('enforced');
    expect(httpApplicationRouting.defaultMode).toBe('approve');
  });

  it('finds the enabled add-on in the third-party list response (CRLF as published, collection id)', () => {
    expect(readFileSync(DEMISTO, 'utf8')).toContain('\r\n');
    const cluster = demistoCluster();
    const [judgement, ...rest] = httpApplicationRouting.evaluate(observe(cluster));
    expect(rest).toHaveLength(0);
    expect(judgement.compliant).toBe(false);
    expect(judgement.targetId).toBe(cluster.id);
    expect(judgement.clusterId).toBe(cluster.id);
    expect(judgement.tagSources).toEqual([cluster.tags]);
    expect(judgement.detail).toMatch(/HTTP application routing add-on enabled.*disable it/);
  });

  it('disables exactly that add-on key, without an ETag when none was read, and the result is compliant', () => {
    const cluster = demistoCluster();
    const change = asChange(planFor(cluster));
    expect(change).toMatchObject({
      kind: 'cluster-property',
      clusterId: cluster.id,
      path: ['properties', 'addonProfiles', 'httpApplicationRouting', 'enabled'],
      before: true,
      after: false,
      ifMatch: undefined,
      needsPerson: false,
    });
    const fixed = applied(cluster, change);
    expect(httpApplicationRouting.evaluate(observe(fixed))[0].compliant).toBe(true);
    // Only the add-on flag changed: its zone config and the other add-on are kept.
    expect(fixed.properties.addonProfiles).toEqual({
      ...cluster.properties.addonProfiles,
      httpApplicationRouting: { ...cluster.properties.addonProfiles!.httpApplicationRouting, enabled: false },
    });
  });

  it.each(['HttpApplicationRouting', 'HTTPAPPLICATIONROUTING', 'httpapplicationrouting'])(
    'matches the add-on key %s case-insensitively and plans on the key as spelled',
    (key) => {
      const cluster = withAddon(clusterFromExample(PUBLIC_GET), key, true);
      expect(httpApplicationRouting.evaluate(observe(cluster))[0].compliant).toBe(false);
      const change = asChange(planFor(cluster));
      expect(change.path).toEqual(['properties', 'addonProfiles', key, 'enabled']);
      expect(change.ifMatch).toBe('beywbwei');
    },
  );

  it('accepts the published clusters, which have no such add-on', () => {
    for (const file of [PUBLIC_GET, 'arm-aks-2026-08-01/ManagedClustersGet.json', 'arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json']) {
      const [judgement] = httpApplicationRouting.evaluate(observe(clusterFromExample(file)));
      expect(judgement.compliant).toBe(true);
    }
  });

  it.each([false, undefined])('accepts the add-on when enabled is %s', (enabled) => {
    const cluster = withAddon(clusterFromExample(PUBLIC_GET), 'httpApplicationRouting', enabled);
    expect(httpApplicationRouting.evaluate(observe(cluster))[0].compliant).toBe(true);
  });

  it('is not fooled by another add-on that is enabled', () => {
    const cluster = withAddon(clusterFromExample(PUBLIC_GET), 'httpApplicationRoutingV2', true);
    expect(httpApplicationRouting.evaluate(observe(cluster))[0].compliant).toBe(true);
  });
});
