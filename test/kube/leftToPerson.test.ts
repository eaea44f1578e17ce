// An instance-metadata approval that holds only namespaces left to a person (each has egress policies
// of its own, where NetGuard never writes, approved or not). Reached as the on-call person reaches it:
// `aks-netguard sweep` in the default mode, the card posted to Teams through the connector stand-in,
// and clicks sent to the bot as Bot Framework Action.Execute activities. Judged by the card, the
// bot's answer, the approval's state and the Kubernetes stand-in's writes.
import { randomUUID } from 'node:crypto';
import { runCli } from '../../shared/cli/main';
import { deliverNotice } from '../../shared/notify/queueSink';
import { createRuntime } from '../../shared/runtime';
import { DEFAULT_TABLE_PREFIX } from '../../shared/store/tables';
import type { ApprovalRecord } from '../../shared/store/types';
import type { ApprovalActionData } from '../../shared/teams/cards';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import type { Finding, RunReport } from '../../shared/types';
import { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture } from '../../testkit/fleet';
import { KubeSandbox } from '../../testkit/kubeServer';
import { useAzurite } from '../helpers/azurite';
import { validateCard15 } from '../teams/adaptiveCard15';
import { APPROVER, cardClick, channelMessage, startHarness, type Harness } from '../teams/harness';

const OTHERS_EXEMPT = { 'aks-netguard-exempt': 'node-ssh-deny,api-authorized-ranges,http-application-routing,network-policy,egress-lockdown,service-mesh' };
const CHANNEL = '19:aaaa0000000000000000000000000011@thread.tacv2';
const ADMITS = /payments: the egress policies allow-egress-anywhere admit 169\.254\.169\.254:80; add an except for 169\.254\.169\.254\/32/;

const azurite = useAzurite();
let SUB: string;
let arm: ArmSandbox;
let kube: KubeSandbox;
let clusterId: string;
let h: Harness;

beforeEach(async () => {
  SUB = randomUUID();
  arm = await ArmSandbox.start({ subscriptions: [SUB] });
  kube = await KubeSandbox.start();
  const cluster = arm.put(
    clusterFromFixture({
      subscriptionId: SUB,
      resourceGroup: 'rg',
      name: 'aks-team-egress',
      tags: OTHERS_EXEMPT,
      properties: { aadProfile: { managed: true, enableAzureRBAC: true }, networkProfile: { networkPlugin: 'azure', networkPolicy: 'calico' } },
    }),
  );
  clusterId = cluster.id;
  arm.setKubeApiServer(cluster.id, kube.url);
  kube.addNamespace('kube-system');
  // default is closed (deny all egress); payments' own policy admits everything, IMDS included.
  kube.putPolicy('default', { metadata: { name: 'default-deny-egress' }, spec: { podSelector: {}, policyTypes: ['Egress'] } });
  kube.putPolicy('payments', { metadata: { name: 'allow-egress-anywhere' }, spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] } });

  const env = sweepEnv();
  const runtime = createRuntime({ env });
  h = await startHarness(azurite, { approvers: [APPROVER], tablePrefix: DEFAULT_TABLE_PREFIX, executor: { executeApproval: (a, by) => runtime.engine.executeApproval(a, by) } });
  await h.post(channelMessage(h, 'subscribe', CHANNEL));

  let stdout = '';
  const code = await runCli(['sweep', '--json', '--subscription', SUB], { stdout: (t) => (stdout += t), stderr: () => undefined, env });
  expect(code).toBe(0);
  const finding = (JSON.parse(stdout) as RunReport).findings.find((f: Finding) => f.control === 'instance-metadata')!;
  expect(finding).toMatchObject({ status: 'drift', action: 'approval-requested' });
}, 60_000);

afterEach(async () => {
  await h.connector.stop();
  await kube.stop();
  await arm.stop();
});

function sweepEnv(): Record<string, string> {
  return { AKS_NETGUARD_ARM_ENDPOINT: arm.endpoint, AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '5', AKS_NETGUARD_APPROVERS: APPROVER, AzureWebJobsStorage: azurite.connectionString };
}

/** The approval the sweep stored, and its card as the channel received it. */
async function postedCard(): Promise<{ approval: ApprovalRecord; card: any; conversationId: string; replyToId: string }> {
  const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'instance-metadata' && a.clusterId === clusterId)!;
  expect(approval).toBeDefined();
  await deliverNotice({ kind: 'approval-requested', approval }, { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });
  const posted = h.connector.posted();
  const last = posted[posted.length - 1];
  return { approval, card: last.body.attachments[0].content, conversationId: last.conversationId, replyToId: `1:${posted.length}` };
}

const buttons = (card: any) => card.body.filter((e: any) => e.type === 'ActionSet').flatMap((s: any) => s.actions) as Array<{ title: string; verb: string; data: ApprovalActionData }>;
const kubeWrites = () => kube.requests.filter((r) => r.method !== 'GET');

test('the card says NetGuard will not write there, names the policy to change, and offers no Approve', async () => {
  const { card } = await postedCard();
  expect(validateCard15(card)).toEqual([]);
  const text = JSON.stringify(card);
  // The cluster name is markdown-escaped on the card (aks\-team\-egress renders as aks-team-egress).
  expect(card.body[0].items[0].text).toBe('A person must act: instance-metadata on aks\\-team\\-egress');
  expect(text).toMatch(/NetGuard will not write in these namespaces, approved or not/);
  expect(text).toMatch(ADMITS);
  expect(text).not.toContain('The change NetGuard will make');
  expect(text).not.toMatch(/default: /);
  const offered = buttons(card).map((b) => b.data.action);
  expect(offered).not.toContain('approve');
  expect(offered.sort()).toEqual(['exempt', 'reject']);
  expect(buttons(card).find((b) => b.data.action === 'reject')?.title).toMatch(/^Acknowledge/);
});

test('Acknowledge: the bot answers that NetGuard changes nothing and a person changes the named policy', async () => {
  const { approval, card, conversationId, replyToId } = await postedCard();
  const ack = buttons(card).find((b) => b.data.action === 'reject')!;
  const res = await h.post(cardClick(h, { replyToId, conversationId, verb: ack.verb, data: ack.data }));
  expect(res.status).toBe(200);
  expect(res.body.type).toBe('application/vnd.microsoft.card.adaptive');
  expect(validateCard15(res.body.value)).toEqual([]);
  const answer = JSON.stringify(res.body.value);
  expect(answer).toMatch(/Acknowledged by Rido.*NetGuard changes nothing here; a person changes the policies named below/);
  expect(answer).toMatch(ADMITS);
  expect(answer).not.toMatch(/Rejected|failed/);
  expect((await h.store.getApproval(approval.id))?.state).toBe('rejected');
  expect(kubeWrites()).toEqual([]);

  // While payments stays open, the next sweep asks again (as the card says), and still writes nothing.
  const code = await runCli(['sweep', '--json', '--subscription', SUB], { stdout: () => undefined, stderr: () => undefined, env: sweepEnv() });
  expect(code).toBe(0);
  expect((await h.store.getApproval(approval.id))?.state).toBe('pending');
  expect(kubeWrites()).toEqual([]);
});

test('an Approve click (from a card sent before, or a crafted one) answers clearly: nothing to apply, not a failure', async () => {
  const { approval, card, conversationId, replyToId } = await postedCard();
  // Same request and nonce as the card carries: only the action differs.
  const ack = buttons(card).find((b) => b.data.action === 'reject')!;
  const data: ApprovalActionData = { ...ack.data, action: 'approve' };
  const res = await h.post(cardClick(h, { replyToId, conversationId, verb: 'netguard.approve', data }));
  expect(res.status).toBe(200);
  const answer = JSON.stringify(res.body.value);
  expect(answer).toMatch(/Approved by Rido.*: nothing to apply\. NetGuard does not write here; a person must change the policies named below/);
  expect(answer).toMatch(/Nothing was changed: NetGuard does not write where only a person may make the change, approved or not/);
  expect(answer).toMatch(ADMITS);
  expect(answer).not.toMatch(/the fix failed|Nothing in this plan is a change NetGuard makes itself/);
  // The approval re-read the namespaces and policies, and wrote nothing.
  expect(kube.requests.some((r) => r.path === '/apis/networking.k8s.io/v1/networkpolicies')).toBe(true);
  expect(kubeWrites()).toEqual([]);
  expect((await h.store.getApproval(approval.id))?.state).toBe('approved');
});
