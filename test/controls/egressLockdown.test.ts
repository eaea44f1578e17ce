import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { egressLockdown } from '../../shared/controls/egressLockdown';
import type { ClusterObservation } from '../../shared/controls/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function clusterFromExample(file: string, status = '200'): ArmManagedCluster {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  return example.responses[status].body as ArmManagedCluster;
}

function demistoCluster(): ArmManagedCluster {
  const file = path.join(FIXTURES, 'third-party', 'demisto-content_AzureKubernetesServices_clusters_list_response.json');
  return JSON.parse(readFileSync(file, 'utf8')).value[0] as ArmManagedCluster;
}

function observe(cluster: ArmManagedCluster): ClusterObservation {
  return { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }) };
}

function withOutboundType(cluster: ArmManagedCluster, outboundType: string | undefined): ArmManagedCluster {
  const copy = structuredClone(cluster);
  copy.properties.networkProfile = { ...(copy.properties.networkProfile ?? {}), outboundType };
  return copy;
}

const PUBLIC_GET = 'arm-aks-2026-01-01/ManagedClustersGet.json';

describe('egress-lockdown control', () => {
  it('is advisory and reports by default', () => {
    expect(egressLockdown.id).toBe('egress-lockdown');
    expect(egressLockdown.severity).toBe('advisory');
    expect(egressLockdown.defaultMode).toBe('report');
  });

  it('finds drift on the published NAT gateway cluster and names its outbound type', () => {
    const cluster = clusterFromExample('arm-aks-2026-01-01/ManagedClustersCreate_UserAssignedNATGateway.json');
    const [judgement, ...rest] = egressLockdown.evaluate(observe(cluster));
    expect(rest).toHaveLength(0);
    expect(judgement).toMatchObject({ control: 'egress-lockdown', clusterId: cluster.id, targetId: cluster.id, compliant: false });
    expect(judgement.tagSources).toEqual([cluster.tags]);
    expect(judgement.detail).toMatch(/"userAssignedNATGateway".*userDefinedRouting/);
  });

  it.each([PUBLIC_GET, 'arm-aks-2026-08-01/ManagedClustersGet.json'])('finds drift on the load-balancer egress of %s', (file) => {
    const [judgement] = egressLockdown.evaluate(observe(clusterFromExample(file)));
    expect(judgement.compliant).toBe(false);
    expect(judgement.detail).toContain('"loadBalancer"');
  });

  it('treats an unset outbound type (the third-party payload) as the default load balancer', () => {
    const [judgement] = egressLockdown.evaluate(observe(demistoCluster()));
    expect(judgement.compliant).toBe(false);
    expect(judgement.detail).toMatch(/not set, so loadBalancer/);
  });

  it.each(['userDefinedRouting', 'UserDefinedRouting', 'userdefinedrouting'])('accepts outboundType %s', (outboundType) => {
    const [judgement] = egressLockdown.evaluate(observe(withOutboundType(clusterFromExample(PUBLIC_GET), outboundType)));
    expect(judgement.compliant).toBe(true);
  });

  it('never plans a change, and says what a person can do instead', () => {
    const observation = observe(clusterFromExample(PUBLIC_GET));
    const plan = egressLockdown.plan(egressLockdown.evaluate(observation)[0], observation);
    expect(plan.kind).toBe('none');
    expect(plan.kind === 'none' && plan.reason).toMatch(/advisory.*userDefinedRouting/);
  });
});
