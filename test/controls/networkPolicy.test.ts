import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { networkPolicy } from '../../shared/controls/networkPolicy';
import type { ClusterObservation } from '../../shared/controls/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function clusterFromExample(file: string, status = '200'): ArmManagedCluster {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  return example.responses[status].body as ArmManagedCluster;
}

function observe(cluster: ArmManagedCluster): ClusterObservation {
  return { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }) };
}

function withPolicy(cluster: ArmManagedCluster, policy: string | undefined): ArmManagedCluster {
  const copy = structuredClone(cluster);
  copy.properties.networkProfile = { ...(copy.properties.networkProfile ?? {}), networkPolicy: policy };
  return copy;
}

const PUBLIC_GET = 'arm-aks-2026-01-01/ManagedClustersGet.json';

describe('network-policy control', () => {
  it('is advisory and reports by default', () => {
    expect(networkPolicy.id).toBe('network-policy');
    expect(networkPolicy.severity).toBe('advisory');
    expect(networkPolicy.defaultMode).toBe('report');
  });

  it.each([
    PUBLIC_GET,
    'arm-aks-2026-08-01/ManagedClustersGet.json',
    'arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json',
    'arm-aks-2026-01-01/ManagedClustersCreate_PrivateClusterPublicFQDN.json',
  ])('finds drift on %s, which sets no network policy', (file) => {
    const cluster = clusterFromExample(file);
    const [judgement, ...rest] = networkPolicy.evaluate(observe(cluster));
    expect(rest).toHaveLength(0);
    expect(judgement).toMatchObject({ control: 'network-policy', clusterId: cluster.id, targetId: cluster.id, compliant: false });
    expect(judgement.tagSources).toEqual([cluster.tags]);
    expect(judgement.detail).toMatch(/not set.*Calico or Cilium/);
  });

  it.each(['azure', 'calico', 'cilium', 'Calico', 'AZURE'])('accepts networkPolicy %s', (policy) => {
    const [judgement] = networkPolicy.evaluate(observe(withPolicy(clusterFromExample(PUBLIC_GET), policy)));
    expect(judgement.compliant).toBe(true);
    expect(judgement.detail).toContain(policy);
  });

  it.each(['none', 'None', ''])('treats networkPolicy "%s" as drift', (policy) => {
    expect(networkPolicy.evaluate(observe(withPolicy(clusterFromExample(PUBLIC_GET), policy)))[0].compliant).toBe(false);
  });

  it('never plans a change, and says what a person can do instead', () => {
    const observation = observe(clusterFromExample(PUBLIC_GET));
    const plan = networkPolicy.plan(networkPolicy.evaluate(observation)[0], observation);
    expect(plan.kind).toBe('none');
    expect(plan.kind === 'none' && plan.reason).toMatch(/advisory.*Network Policy Manager, Calico or Cilium/);
  });
});
