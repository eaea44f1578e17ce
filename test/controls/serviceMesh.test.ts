import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { serviceMesh } from '../../shared/controls/serviceMesh';
import type { ClusterObservation } from '../../shared/controls/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function clusterFromExample(file: string, status = '200'): ArmManagedCluster {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  return example.responses[status].body as ArmManagedCluster;
}

function observe(cluster: ArmManagedCluster): ClusterObservation {
  return { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }) };
}

function withMeshMode(cluster: ArmManagedCluster, mode: string): ArmManagedCluster {
  const copy = structuredClone(cluster);
  copy.properties.serviceMeshProfile = { ...(copy.properties.serviceMeshProfile ?? {}), mode };
  return copy;
}

const MESH = 'arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json';
const PUBLIC_GET = 'arm-aks-2026-01-01/ManagedClustersGet.json';

describe('service-mesh control', () => {
  it('is advisory and reports by default', () => {
    expect(serviceMesh.id).toBe('service-mesh');
    expect(serviceMesh.severity).toBe('advisory');
    expect(serviceMesh.defaultMode).toBe('report');
  });

  it.each(['200', '201'])('accepts the published Istio cluster (%s)', (status) => {
    const cluster = clusterFromExample(MESH, status);
    const [judgement, ...rest] = serviceMesh.evaluate(observe(cluster));
    expect(rest).toHaveLength(0);
    expect(judgement).toMatchObject({ control: 'service-mesh', clusterId: cluster.id, targetId: cluster.id, compliant: true });
    expect(judgement.tagSources).toEqual([cluster.tags]);
  });

  it.each([PUBLIC_GET, 'arm-aks-2026-08-01/ManagedClustersGet.json', 'arm-aks-2026-01-01/ManagedClustersCreate_UserAssignedNATGateway.json'])(
    'finds drift on %s, which has no mesh',
    (file) => {
      const [judgement] = serviceMesh.evaluate(observe(clusterFromExample(file)));
      expect(judgement.compliant).toBe(false);
      expect(judgement.detail).toMatch(/not set.*Istio/);
    },
  );

  it('finds drift when the mesh was switched to Disabled, and names the value', () => {
    const [judgement] = serviceMesh.evaluate(observe(withMeshMode(clusterFromExample(MESH), 'Disabled')));
    expect(judgement.compliant).toBe(false);
    expect(judgement.detail).toContain('"Disabled"');
  });

  it('matches Istio case-insensitively', () => {
    expect(serviceMesh.evaluate(observe(withMeshMode(clusterFromExample(PUBLIC_GET), 'istio')))[0].compliant).toBe(true);
  });

  it('never plans a change, and says what a person can do instead', () => {
    const observation = observe(clusterFromExample(PUBLIC_GET));
    const plan = serviceMesh.plan(serviceMesh.evaluate(observation)[0], observation);
    expect(plan.kind).toBe('none');
    expect(plan.kind === 'none' && plan.reason).toMatch(/advisory.*az aks mesh enable/);
  });
});
