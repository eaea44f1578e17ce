// The whole approval loop with nothing stood in for NetGuard itself: a sweep of the sandbox fleet
// requests approvals, the cards reach Teams (connector stand-in), an approver clicks, the real engine
// re-reads the cluster in the ARM sandbox and applies the fix; an exemption granted from Teams
// makes the next sweep report `exempt`.
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { loadSettings } from '../../shared/config';
import { Engine } from '../../shared/engine/engine';
import { deliverNotice } from '../../shared/notify/queueSink';
import { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import type { ApprovalRecord } from '../../shared/store/types';
import type { ApprovalActionData } from '../../shared/teams/cards';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import { useAzurite } from '../helpers/azurite';
import { APPROVER, cardClick, channelMessage, startHarness, type Harness } from './harness';

const CHANNEL = '19:eeee0000000000000000000000000005@thread.tacv2';
const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let h: Harness;
let engine: Engine;

beforeEach(async () => {
  sandbox = await ArmSandbox.start({ lroPolls: 1 });
  fleet = seedDriftedFleet(sandbox);
  // The bot's executor is the real engine (whichever `engine` is at the click), sharing the bot's store and its exemptions.
  h = await startHarness(azurite, { approvers: [APPROVER], executor: { executeApproval: (a, by) => engine.executeApproval(a, by) } });
  const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_APPROVERS: APPROVER, AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24' });
  const arm = new ArmGateway({ endpoint: sandbox.endpoint, pollIntervalMs: 5 });
  engine = new Engine({ arm, settings, store: h.store, exemptions: h.tables });
  await h.post(channelMessage(h, 'subscribe', CHANNEL));
  h.connector.calls.length = 0;
});
afterEach(async () => {
  await h.connector.stop();
  await sandbox.stop();
});

const clusterOf = (label: string) => fleet.clusters.find((c) => c.label === label)!.clusterId;

async function deliverAndGetButtons(approval: ApprovalRecord) {
  await deliverNotice({ kind: 'approval-requested', approval }, { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });
  const posted = h.connector.posted();
  const copy = posted[posted.length - 1];
  const card = copy.body.attachments[0].content;
  // Every Action.Execute on the card (a long narrowing also carries a show-the-list toggle).
  const actions: Array<{ verb: string; data: ApprovalActionData }> = [];
  const walk = (node: any): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      if (node.type === 'Action.Execute') actions.push(node);
      Object.values(node).forEach(walk);
    }
  };
  walk(card.body);
  const button = (action: ApprovalActionData['action']) => actions.find((b) => b.data?.action === action)!;
  return { copy, button, activityId: `1:${posted.length}` };
}

function click(copy: { conversationId: string }, activityId: string, b: { verb: string; data: unknown }) {
  return h.post(cardClick(h, { replyToId: activityId, conversationId: copy.conversationId, verb: b.verb, data: b.data }));
}

test('a sweep asks, an approver approves in Teams, and the engine applies the fix to the cluster', async () => {
  const e = clusterOf('e'); // httpApplicationRouting enabled; the control's default mode is approve
  await engine.sweep([fleet.subscriptionId]);
  const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'http-application-routing' && a.clusterId === e)!;
  expect(approval).toBeDefined();
  expect(sandbox.get<ArmManagedCluster>(e)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);

  const { copy, button, activityId } = await deliverAndGetButtons(approval);
  const res = await click(copy, activityId, button('approve'));
  expect(res.status).toBe(200);
  expect(JSON.stringify(res.body.value)).toMatch(/Approved by .* at .*: done/);

  // The cluster in ARM now has the add-on disabled, written with If-Match, everything else as it was.
  expect(sandbox.get<ArmManagedCluster>(e)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
  const put = sandbox.findRequests({ method: 'PUT' }).find((r) => r.path.toLowerCase() === e.toLowerCase())!;
  expect(put.headers['if-match']).toBeTruthy();
  expect((await h.store.getApproval(approval.id))?.state).toBe('approved');

  const next = await engine.sweep([fleet.subscriptionId]);
  expect(next.findings.find((f) => f.control === 'http-application-routing' && f.resourceId === e)).toMatchObject({ status: 'compliant' });
}, 60_000);

test('exempt from Teams: nothing is changed and the next sweep reports the finding as exempt', async () => {
  const d = clusterOf('d'); // authorized ranges cleared
  await engine.sweep([fleet.subscriptionId]);
  const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'api-authorized-ranges' && a.clusterId === d)!;
  expect(approval).toBeDefined();
  const { copy, button, activityId } = await deliverAndGetButtons(approval);
  sandbox.resetRequests();
  await click(copy, activityId, button('exempt'));
  expect(sandbox.findRequests({ method: 'PUT' })).toHaveLength(0);

  const next = await engine.sweep([fleet.subscriptionId]);
  const finding = next.findings.find((f) => f.control === 'api-authorized-ranges' && f.resourceId === d)!;
  expect(finding).toMatchObject({ status: 'exempt', action: 'skipped' });
  expect(finding.detail).toMatch(/Exempted in Teams by .* until /);
  expect(sandbox.findRequests({ method: 'PUT' }).filter((r) => r.path.toLowerCase() === d.toLowerCase())).toHaveLength(0);
}, 60_000);

describe('a click is re-judged from the topology cache, not by listing the subscription', () => {
  // The deployed engine keeps the topology in Azure Tables (the bot's store), filled by the sweep.
  let cached: Engine;
  beforeEach(() => {
    const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_APPROVERS: APPROVER, AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24' });
    const arm = new ArmGateway({ endpoint: sandbox.endpoint, pollIntervalMs: 5 });
    cached = engine = new Engine({ arm, settings, store: h.store, exemptions: h.tables, topologyCache: h.store });
  });
  /** Subscription-wide list calls (clusters, NSGs, VNets) among the requests the sandbox recorded. */
  const listCalls = () => sandbox.findRequests({ method: 'GET', path: /\/subscriptions\/[^/]+\/providers\/[^/]+\/[^/]+$/i });

  test.each([
    ['http-application-routing', 'e', 'the add-on disabled on the cluster'],
    ['node-ssh-deny', 'i', 'the SSH Allow narrowed on the NSG'],
  ])('%s on cluster %s: the click reads the cluster and its NSG, the fix is applied (%s)', async (control, label) => {
    const clusterId = clusterOf(label);
    await cached.sweep([fleet.subscriptionId]);
    const approval = (await h.store.listApprovals('pending')).find((a) => a.control === control && a.clusterId === clusterId)!;
    expect(approval).toBeDefined();
    const { copy, button, activityId } = await deliverAndGetButtons(approval);
    sandbox.resetRequests();
    const res = await click(copy, activityId, button('approve'));
    expect(JSON.stringify(res.body.value)).toMatch(/Approved by .* at .*: done/);

    expect(listCalls()).toEqual([]);
    const reads = sandbox.findRequests({ method: 'GET' }).filter((r) => !/operations|operationResults|asyncoperations/i.test(r.path));
    // The cluster, and the NSG(s) of its subnets, read live; for a rule, the rule read back after the write.
    expect(reads.some((r) => r.path.toLowerCase() === clusterId.toLowerCase())).toBe(true);
    expect(reads.length).toBeLessThanOrEqual(4);
    // Writes only to what the approval names (a narrowing may be followed by NetGuard's Deny).
    const puts = sandbox.findRequests({ method: 'PUT' });
    expect(puts.length).toBeGreaterThan(0);
    for (const put of puts) expect(put.path.toLowerCase().startsWith(approval.targetId.toLowerCase())).toBe(true);

    // And the fix holds: the next sweep finds the cluster compliant for the control.
    const next = await cached.sweep([fleet.subscriptionId]);
    expect(next.findings.filter((f) => f.control === control && f.resourceId === clusterId).every((f) => f.status === 'compliant')).toBe(true);
  }, 60_000);

  test('a subnet whose NSG was swapped since the sweep makes the click read the whole subscription', async () => {
    const clusterId = clusterOf('e');
    await cached.sweep([fleet.subscriptionId]);
    const approval = (await h.store.listApprovals('pending')).find((a) => a.control === 'http-application-routing' && a.clusterId === clusterId)!;
    // The cache now says the node subnet has another NSG than Azure does (a missed event).
    const nodeSubnet = fleet.clusters.find((c) => c.label === 'e')!.nodeSubnetIds[0];
    const [row] = (await h.store.getCachedSubnets([nodeSubnet])).values();
    const other = fleet.clusters.find((c) => c.label === 'b')!.nsgIds[0];
    await h.store.putCachedSubnets([{ ...row, nsgId: other }]);
    const { copy, button, activityId } = await deliverAndGetButtons(approval);
    sandbox.resetRequests();
    const res = await click(copy, activityId, button('approve'));
    expect(JSON.stringify(res.body.value)).toMatch(/Approved by .* at .*: done/);
    expect(listCalls()).toHaveLength(3);
  }, 60_000);
});
