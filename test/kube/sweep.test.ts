// instance-metadata end to end: `aks-netguard sweep` (in-process through runCli, its own environment)
// against the ARM stand-in and Kubernetes API stand-ins, judged by what a user sees: the JSON
// findings and the NetworkPolicy writes the Kubernetes stand-ins recorded.
import { runCli } from '../../shared/cli/main';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { KUBE_DATA_ACTIONS } from '../../shared/kube/access';
import { OWN_POLICY_NAME, ownPolicySpec } from '../../shared/kube/networkPolicy';
import { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture } from '../../testkit/fleet';
import { KubeSandbox } from '../../testkit/kubeServer';
import type { Finding, RunReport } from '../../shared/types';

const SUB = '11111111-2222-3333-4444-555555555555';
// The other controls are exempt on these clusters, so the sweep's writes are instance-metadata's alone.
const OTHERS_EXEMPT = { 'aks-netguard-exempt': 'node-ssh-deny,api-authorized-ranges,http-application-routing,network-policy,egress-lockdown,service-mesh' };

let arm: ArmSandbox;
let kube: KubeSandbox;
let forbidden: KubeSandbox;
const clusters: Record<string, ArmManagedCluster> = {};

function addCluster(name: string, properties: Partial<ArmManagedCluster['properties']>, kubeServer?: KubeSandbox): ArmManagedCluster {
  const c = arm.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: 'rg', name, tags: OTHERS_EXEMPT, properties }));
  if (kubeServer) arm.setKubeApiServer(c.id, kubeServer.url);
  clusters[name] = c;
  return c;
}

const aad = { aadProfile: { managed: true, enableAzureRBAC: true } };

beforeEach(async () => {
  arm = await ArmSandbox.start({ subscriptions: [SUB] });
  kube = await KubeSandbox.start();
  forbidden = await KubeSandbox.start();
  forbidden.forbid = () => true;

  addCluster('aks-open', { ...aad, networkProfile: { networkPlugin: 'azure', networkPolicy: 'cilium' } }, kube);
  addCluster('aks-forbidden', { ...aad, networkProfile: { networkPlugin: 'azure', networkPolicy: 'azure' } }, forbidden);
  addCluster('aks-local', { networkProfile: { networkPlugin: 'azure', networkPolicy: 'calico' } });
  addCluster('aks-linklocal', { ...aad, networkProfile: { networkPlugin: 'azure', networkPolicy: 'cilium', podLinkLocalAccess: 'None' } });
  addCluster('aks-nopolicy', { ...aad, networkProfile: { networkPlugin: 'kubenet' } });
  delete (clusters['aks-local'].properties as Record<string, unknown>).aadProfile;
  arm.put(clusters['aks-local']);

  for (const ns of ['default', 'shop', 'billing', 'kube-system']) kube.addNamespace(ns);
  kube.putPolicy('shop', { metadata: { name: 'allow-out' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] } });
  kube.putPolicy('shop', { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Egress'] } });
  kube.putPolicy('billing', { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Egress'] } });
});

afterEach(async () => {
  await forbidden.stop();
  await kube.stop();
  await arm.stop();
});

async function sweep(...args: string[]): Promise<{ code: number; report: RunReport; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const env = { AKS_NETGUARD_ARM_ENDPOINT: arm.endpoint, AKS_NETGUARD_PREVIEW_INSTANCE_METADATA: 'on', AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '5' };
  const code = await runCli(['sweep', '--json', '--subscription', SUB, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
  return { code, report: JSON.parse(stdout) as RunReport, stderr };
}

function imds(report: RunReport, name: string): Finding {
  const found = report.findings.filter((f) => (f.control as string) === 'instance-metadata' && f.resourceId === clusters[name].id);
  expect(found).toHaveLength(1);
  return found[0];
}

const kubeWrites = (server: KubeSandbox) => server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path} ${r.status}`);

describe('aks-netguard sweep with instance-metadata', () => {
  test('default mode (approve) without storage: judges every cluster, reports, writes nothing', async () => {
    const { code, report } = await sweep();
    expect(code).toBe(0);
    const open = imds(report, 'aks-open');
    expect(open).toMatchObject({ status: 'drift', action: 'reported', targetId: clusters['aks-open'].id });
    expect(open.detail).toContain('default (no egress policy)');
    expect(open.detail).toContain('shop (admitted by allow-out)');
    expect(open.detail).not.toMatch(/billing|kube-system/);
    expect(open.detail).toMatch(/without storage approve acts as report/);
    expect(kubeWrites(kube)).toEqual([]);
  });

  test('--mode auto: fixes the namespace without egress policies, leaves the other to a person, and a second sweep writes nothing', async () => {
    const first = await sweep('--mode', 'auto');
    expect(first.code).toBe(0);

    // Only `default` is written, once, with NetGuard's policy.
    expect(kubeWrites(kube)).toEqual([`POST /apis/networking.k8s.io/v1/namespaces/default/networkpolicies 201`]);
    expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
    expect(kube.listPolicies('shop').map((p) => p.metadata.name).sort()).toEqual(['allow-out', 'deny']);

    const open = imds(first.report, 'aks-open');
    expect(open).toMatchObject({ status: 'drift', action: 'reported' });
    expect(open.detail).toMatch(/NetGuard fixed default/);
    expect(open.detail).toMatch(/Still open, for a person — shop: the egress policies allow-out admit 169\.254\.169\.254:80/);

    // The rest of the fleet: each case says what it is, and the sweep went on past the failures.
    expect(imds(first.report, 'aks-forbidden')).toMatchObject({ status: 'error', action: 'none' });
    expect(imds(first.report, 'aks-forbidden').detail).toContain(KUBE_DATA_ACTIONS[0]);
    expect(imds(first.report, 'aks-local')).toMatchObject({ status: 'error', detail: expect.stringMatching(/local Kubernetes accounts only/) });
    expect(imds(first.report, 'aks-linklocal')).toMatchObject({ status: 'compliant', action: 'none' });
    expect(imds(first.report, 'aks-nopolicy')).toMatchObject({ status: 'drift', action: 'reported', detail: expect.stringMatching(/network-policy/) });
    expect(kubeWrites(forbidden).filter((w) => !w.endsWith('403'))).toEqual([]);
    // Only clusters that need their Kubernetes objects are asked for a kubeconfig.
    const asked = arm.findRequests({ method: 'POST', path: /listClusterUserCredential$/ }).map((r) => r.path.split('/')[8]);
    expect(new Set(asked)).toEqual(new Set(['aks-open', 'aks-forbidden']));
    expect(arm.findRequests((r) => r.method === 'PUT' || r.method === 'DELETE')).toEqual([]);

    kube.requests.length = 0;
    const second = await sweep('--mode', 'auto');
    expect(kubeWrites(kube)).toEqual([]);
    const again = imds(second.report, 'aks-open');
    expect(again).toMatchObject({ status: 'drift', action: 'reported' });
    expect(again.detail).not.toContain('default (');
    expect(again.detail).toContain('shop (admitted by allow-out)');
  });

  test("--mode auto puts NetGuard's own policy back, with its resourceVersion, after someone widened it", async () => {
    kube.putPolicy('shop', { metadata: { name: 'allow-out' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    kube.putPolicy('shop', { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    await sweep('--mode', 'auto');
    const created = kube.getPolicy('default', OWN_POLICY_NAME)!;
    const widened = structuredClone(created) as { metadata: { name: string }; spec: any };
    delete widened.spec.egress[0].to[0].ipBlock.except;
    const stored = kube.putPolicy('default', widened);

    kube.requests.length = 0;
    const { report } = await sweep('--mode', 'auto');
    const puts = kube.requests.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => `${r.path} ${r.status}`)).toEqual([`/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/${OWN_POLICY_NAME} 200`]);
    expect((puts[0].body as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe(stored.metadata.resourceVersion);
    expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
    expect(imds(report, 'aks-open')).toMatchObject({ status: 'drift', action: 'remediated' });
  });
});
