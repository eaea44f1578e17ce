// instance-metadata end to end, as a first-class control: `aks-netguard sweep` (in-process through
// runCli, its own environment) against the ARM stand-in and Kubernetes API stand-ins, judged by what
// a user sees: the JSON findings, the NetworkPolicy writes the Kubernetes stand-ins recorded, the
// approval card in Teams and what an approver's click does.
import { randomUUID } from 'node:crypto';
import { runCli } from '../../shared/cli/main';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { KUBE_DATA_ACTIONS } from '../../shared/kube/access';
import { OWN_POLICY_NAME, ownPolicySpec } from '../../shared/kube/networkPolicy';
import { deliverNotice } from '../../shared/notify/queueSink';
import { createRuntime } from '../../shared/runtime';
import { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture } from '../../testkit/fleet';
import { KubeSandbox } from '../../testkit/kubeServer';
import { DEFAULT_TABLE_PREFIX } from '../../shared/store/tables';
import type { ApprovalActionData } from '../../shared/teams/cards';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import type { Finding, RunReport } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { APPROVER, cardClick, channelMessage, startHarness } from '../teams/harness';

// The other controls are exempt on these clusters, so the sweep's writes are instance-metadata's alone.
const OTHERS_EXEMPT = { 'aks-netguard-exempt': 'node-ssh-deny,api-authorized-ranges,http-application-routing,network-policy,egress-lockdown,service-mesh' };
const CHANNEL = '19:aaaa0000000000000000000000000010@thread.tacv2';

const azurite = useAzurite();
let SUB: string;
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
  // A subscription of its own per test: the storage tests share Azurite's default tables.
  SUB = randomUUID();
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

function envFor(storage: boolean): Record<string, string> {
  return {
    AKS_NETGUARD_ARM_ENDPOINT: arm.endpoint,
    AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '5',
    AKS_NETGUARD_APPROVERS: APPROVER,
    ...(storage ? { AzureWebJobsStorage: azurite.connectionString } : {}),
  };
}

async function sweep(args: string[] = [], storage = false): Promise<{ code: number; report: RunReport; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['sweep', '--json', '--subscription', SUB, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: envFor(storage) });
  return { code, report: JSON.parse(stdout) as RunReport, stderr };
}

function imds(report: RunReport, name: string): Finding {
  const found = report.findings.filter((f) => f.control === 'instance-metadata' && f.resourceId === clusters[name].id);
  expect(found).toHaveLength(1);
  return found[0];
}

const kubeWrites = (server: KubeSandbox) => server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path} ${r.status}`);
const CREATE_IN_DEFAULT = 'POST /apis/networking.k8s.io/v1/namespaces/default/networkpolicies 201';

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
    // One finding per control per cluster, instance-metadata included.
    expect(report.findings.filter((f) => f.resourceId === clusters['aks-open'].id)).toHaveLength(7);
  });

  test('--mode auto: fixes the namespace without egress policies, leaves the other to a person, and a second sweep writes nothing', async () => {
    const first = await sweep(['--mode', 'auto']);
    expect(first.code).toBe(0);

    // Only `default` is written, once, with NetGuard's policy.
    expect(kubeWrites(kube)).toEqual([CREATE_IN_DEFAULT]);
    expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
    expect(kube.listPolicies('shop').map((p) => p.metadata.name).sort()).toEqual(['allow-out', 'deny']);

    // Without storage the rest is reported (approve acts as report), naming both what was fixed and what is left.
    const open = imds(first.report, 'aks-open');
    expect(open).toMatchObject({ status: 'drift', action: 'reported' });
    expect(open.detail).toMatch(/NetGuard fixed part of it: Create the NetworkPolicy aks-netguard-deny-instance-metadata .* in default\./);
    expect(open.detail).toMatch(/leave to a person — shop: the egress policies allow-out admit 169\.254\.169\.254:80/);

    // The rest of the fleet: each case says what it is, and the sweep went on past the failures.
    expect(imds(first.report, 'aks-forbidden')).toMatchObject({ status: 'error', action: 'none' });
    expect(imds(first.report, 'aks-forbidden').detail).toContain(KUBE_DATA_ACTIONS[0]);
    expect(imds(first.report, 'aks-local')).toMatchObject({ status: 'error', detail: expect.stringMatching(/local Kubernetes accounts only/) });
    expect(imds(first.report, 'aks-linklocal')).toMatchObject({ status: 'compliant', action: 'none' });
    expect(imds(first.report, 'aks-nopolicy')).toMatchObject({ status: 'drift', action: 'reported', detail: expect.stringMatching(/network-policy/) });
    expect(kubeWrites(forbidden).filter((w) => !w.endsWith('403'))).toEqual([]);
    // Only clusters that need their Kubernetes objects are asked for a kubeconfig, once each.
    const asked = arm.findRequests({ method: 'POST', path: /listClusterUserCredential$/ }).map((r) => r.path.split('/')[8]);
    expect(asked.sort()).toEqual(['aks-forbidden', 'aks-open']);
    expect(arm.findRequests((r) => r.method === 'PUT' || r.method === 'DELETE')).toEqual([]);

    kube.requests.length = 0;
    const second = await sweep(['--mode', 'auto']);
    expect(kubeWrites(kube)).toEqual([]);
    // Nothing drifting and reachable costs one namespace list and one policy list.
    expect(kube.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`)).toEqual(['GET /api/v1/namespaces', 'GET /apis/networking.k8s.io/v1/networkpolicies']);
    const again = imds(second.report, 'aks-open');
    expect(again).toMatchObject({ status: 'drift', action: 'reported' });
    expect(again.detail).not.toContain('default (');
    expect(again.detail).toContain('shop (admitted by allow-out)');
  });

  test("--mode auto puts NetGuard's own policy back, with its resourceVersion, after someone widened it", async () => {
    kube.putPolicy('shop', { metadata: { name: 'allow-out' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    kube.putPolicy('shop', { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    await sweep(['--mode', 'auto']);
    const created = kube.getPolicy('default', OWN_POLICY_NAME)!;
    const widened = structuredClone(created) as { metadata: { name: string }; spec: any };
    delete widened.spec.egress[0].to[0].ipBlock.except;
    const stored = kube.putPolicy('default', widened);

    kube.requests.length = 0;
    const { report } = await sweep(['--mode', 'auto']);
    const puts = kube.requests.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => `${r.path} ${r.status}`)).toEqual([`/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/${OWN_POLICY_NAME} 200`]);
    expect((puts[0].body as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe(stored.metadata.resourceVersion);
    expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
    expect(imds(report, 'aks-open')).toMatchObject({ status: 'drift', action: 'remediated' });
  });

  test('a person who narrowed NetGuard\'s policy is left alone: nothing is written, the namespace goes to a person', async () => {
    await sweep(['--mode', 'auto']);
    const narrowed = structuredClone(kube.getPolicy('default', OWN_POLICY_NAME)!) as { metadata: { name: string }; spec: any };
    narrowed.spec.egress[0].to = [{ ipBlock: { cidr: '10.0.0.0/8' } }];
    narrowed.spec.egress[0].ports = [{ port: 80 }];
    narrowed.spec.egress.push({ to: [{ ipBlock: { cidr: '169.254.169.254/32' } }] });
    kube.putPolicy('default', narrowed);
    kube.requests.length = 0;
    const { report } = await sweep(['--mode', 'auto']);
    expect(kubeWrites(kube)).toEqual([]);
    expect(imds(report, 'aks-open').detail).toMatch(/default: aks-netguard-deny-instance-metadata was changed/);
  });

  test('AKS_NETGUARD_MAX_WRITES_PER_RUN counts each NetworkPolicy: a fix of more namespaces than the cap allows waits for a person', async () => {
    kube.addNamespace('team-a');
    let stdout = '';
    const code = await runCli(['sweep', '--json', '--mode', 'auto', '--subscription', SUB], {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      env: { ...envFor(false), AKS_NETGUARD_MAX_WRITES_PER_RUN: '1' },
    });
    expect(code).toBe(0);
    expect(kubeWrites(kube)).toEqual([]);
    expect(imds(JSON.parse(stdout) as RunReport, 'aks-open').detail).toMatch(/AKS_NETGUARD_MAX_WRITES_PER_RUN \(1\).*default, team-a/);
  });

  test('a write that meets a newer version (409) is re-read, re-judged and made again: the fix is verified', async () => {
    kube.failNext({ method: 'POST', pathPattern: /\/namespaces\/default\/networkpolicies$/, status: 409 });
    const { report } = await sweep(['--mode', 'auto']);
    expect(kubeWrites(kube)).toEqual([CREATE_IN_DEFAULT.replace(/201$/, '409'), CREATE_IN_DEFAULT]);
    expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
    expect(imds(report, 'aks-open').detail).toMatch(/NetGuard fixed part of it: Create the NetworkPolicy .* in default\./);
  });

  test('a cluster exempt from instance-metadata stays exempt even when NetGuard cannot get into it', async () => {
    const local = clusters['aks-local'];
    local.tags = { ...local.tags, 'aks-netguard-exempt': '*' };
    arm.put(local);
    const { report } = await sweep(['--mode', 'auto']);
    expect(imds(report, 'aks-local')).toMatchObject({ status: 'exempt', action: 'skipped', detail: expect.stringMatching(/local Kubernetes accounts only.*Exempt by the tag/) });
  });

  test('--mode auto with storage: the namespace without egress policies is fixed and the rest is an approval request naming both', async () => {
    const { code, report } = await sweep(['--mode', 'auto'], true);
    expect(code).toBe(0);
    expect(kubeWrites(kube)).toEqual([CREATE_IN_DEFAULT]);
    const open = imds(report, 'aks-open');
    expect(open).toMatchObject({ status: 'drift', action: 'approval-requested' });
    expect(open.detail).toMatch(/NetGuard fixed part of it: Create the NetworkPolicy .* in default\. Waiting for approval because .*egress policies of their own.*: Leave to a person — shop: the egress policies allow-out admit/);
  });
});

describe('instance-metadata approvals through Teams', () => {
  test('the default mode asks in Teams; the card shows the plan; approving applies the NetworkPolicy; the next sweep writes nothing', async () => {
    // The bot and the CLI share the storage account's tables; the bot's executor is the real engine.
    const runtime = createRuntime({ env: envFor(true) });
    const h = await startHarness(azurite, { approvers: [APPROVER], tablePrefix: DEFAULT_TABLE_PREFIX, executor: { executeApproval: (a, by) => runtime.engine.executeApproval(a, by) } });
    try {
      await h.post(channelMessage(h, 'subscribe', CHANNEL));

      const first = await sweep([], true);
      expect(first.code).toBe(0);
      expect(imds(first.report, 'aks-open')).toMatchObject({ status: 'drift', action: 'approval-requested' });
      expect(kubeWrites(kube)).toEqual([]);

      const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'instance-metadata' && a.clusterId === clusters['aks-open'].id)!;
      expect(approval).toBeDefined();
      h.connector.calls.length = 0;
      await deliverNotice({ kind: 'approval-requested', approval }, { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });
      const posted = h.connector.posted();
      const card = posted[posted.length - 1].body.attachments[0].content;
      const cardText = JSON.stringify(card);
      expect(cardText).toContain(`create NetworkPolicy ${OWN_POLICY_NAME} in default`);
      expect(cardText).toMatch(/left to a person: shop: the egress policies allow-out admit 169\.254\.169\.254:80/);

      // Someone changes nothing meanwhile; the approver clicks Approve (an Action.Execute invoke).
      const actions = card.body.find((e: any) => e.type === 'ActionSet').actions as Array<{ verb: string; data: ApprovalActionData }>;
      const approve = actions.find((b) => b.data.action === 'approve')!;
      kube.requests.length = 0;
      const res = await h.post(cardClick(h, { replyToId: `1:${posted.length}`, conversationId: posted[posted.length - 1].conversationId, verb: approve.verb, data: approve.data }));
      expect(res.status).toBe(200);
      // Executing re-observed the Kubernetes objects (and re-planned) before writing.
      expect(kube.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`).slice(0, 2)).toEqual(['GET /api/v1/namespaces', 'GET /apis/networking.k8s.io/v1/networkpolicies']);
      expect(kubeWrites(kube)).toEqual([CREATE_IN_DEFAULT]);
      expect(kube.getPolicy('default', OWN_POLICY_NAME)?.spec).toEqual(ownPolicySpec());
      expect((await h.store.getApproval(approval.id))?.state).toBe('approved');

      kube.requests.length = 0;
      const second = await sweep([], true);
      expect(kubeWrites(kube)).toEqual([]);
      const rest = imds(second.report, 'aks-open');
      expect(rest).toMatchObject({ status: 'drift', action: 'approval-requested' });
      expect(rest.detail).not.toContain('default (');
      expect(rest.detail).toMatch(/Leave to a person — shop/);
    } finally {
      await h.connector.stop();
    }
  }, 60_000);

  test('an approval whose namespace got an egress policy meanwhile is not applied: the plan changed', async () => {
    const runtime = createRuntime({ env: envFor(true) });
    const first = await sweep([], true);
    expect(imds(first.report, 'aks-open').action).toBe('approval-requested');
    const store = runtime.store!;
    const approval = (await store.listApprovals('pending')).find((a) => a.control === 'instance-metadata' && a.clusterId === clusters['aks-open'].id)!;
    kube.putPolicy('default', { metadata: { name: 'team-egress' }, spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] } });
    const outcome = await runtime.engine.executeApproval(approval, 'approver@contoso.com');
    expect(outcome.result).toBe('changed');
    expect(kubeWrites(kube)).toEqual([]);
  }, 60_000);
});
