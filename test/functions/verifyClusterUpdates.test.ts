// Cluster updates in the Function App: started, queued on `netguard-verify` (real Azurite queue),
// and verified by later looks; only a verified fix is remediated.
import { InvocationContext } from '@azure/functions';
import { verifyClusterUpdates } from '../../functions/verifyClusterUpdates';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import type { DeferredUpdateSink, PendingClusterUpdate } from '../../shared/engine/deferred';
import { processEventBatch } from '../../shared/events/handler';
import { parseEvents } from '../../shared/events/parse';
import { createRuntime, type Runtime } from '../../shared/runtime';
import { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { TableStateStore } from '../../shared/store/tables';
import { VerifyQueue } from '../../shared/store/verifyQueue';
import { useAzurite } from '../helpers/azurite';
import { freshStore } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick } from './eventRig';
import { MAX_VERIFY_ATTEMPTS } from '../../shared/engine/deferred';
import { decodeNotice, deliverNotice, QueueNoticeSink } from '../../shared/notify/queueSink';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import { channelMessage, startHarness } from '../teams/harness';
import { validateCard15 } from '../teams/adaptiveCard15';
import { QueueClient } from '@azure/storage-queue';

const RANGES = '198.51.100.0/24';
const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let store: TableStateStore;
let queue: VerifyQueue;
let runtime: Runtime;
let logs: string[];

/** The real queue, with no delay between looks so the test does not wait 30 s. */
const immediate: DeferredUpdateSink = { enqueue: (u: PendingClusterUpdate) => queue.enqueue(u, 0) };

beforeEach(async () => {
  sandbox = await ArmSandbox.start({ lroPolls: 2 }); // the update reads InProgress twice, then Succeeded
  fleet = seedDriftedFleet(sandbox);
  store = freshStore(azurite.connectionString);
  queue = VerifyQueue.fromEnvironment({ AzureWebJobsStorage: azurite.connectionString })!;
  await queue.queue.createIfNotExists();
  await queue.queue.clearMessages();
  runtime = createRuntime({
    env: {
      AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
      AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto',
      AKS_NETGUARD_AUTHORIZED_IP_RANGES: RANGES,
    },
    store,
    deferClusterUpdates: immediate,
    pollIntervalMs: 5,
  });
  logs = [];
});
afterEach(async () => {
  await sandbox.stop();
});

const context = () => new InvocationContext({ functionName: 'verifyClusterUpdates', invocationId: 'test', logHandler: (_level, ...args) => logs.push(args.join(' ')) });

/** Runs the queue trigger on every message until the queue is empty; returns the states seen. */
async function drainVerifyQueue(): Promise<string[]> {
  const states: string[] = [];
  for (let round = 0; round < 10; round++) {
    const { receivedMessageItems } = await queue.queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) break;
    for (const m of receivedMessageItems) {
      states.push(await verifyClusterUpdates(m.messageText, context(), runtime, immediate));
      await queue.queue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
  return states;
}

async function clearRangesEvent(clusterId: string) {
  const cluster = sandbox.get<ArmManagedCluster>(clusterId)!;
  cluster.properties.apiServerAccessProfile = { ...cluster.properties.apiServerAccessProfile, authorizedIPRanges: [] };
  delete (cluster as { eTag?: string }).eTag;
  sandbox.put(cluster);
  return processEventBatch(parseEvents([fleetEvent(OP.clusterWrite, clusterId)]), runtime);
}

test('a cluster event starts the update without waiting; later looks verify it and only then is it remediated', async () => {
  const a = pick(fleet, 'a').clusterId;
  const outcome = await clearRangesEvent(a);
  const finding = outcome.report.findings.find((f) => f.control === 'api-authorized-ranges')!;
  expect(finding).toMatchObject({ status: 'drift', action: 'reported' });
  expect(finding.detail).toMatch(/started the fix/);
  // The write went out with If-Match; the status URL has not been polled by the event.
  expect(sandbox.findRequests({ method: 'PUT' }).filter((r) => r.path.toLowerCase() === a.toLowerCase())[0].headers['if-match']).toBeTruthy();
  expect(sandbox.findRequests((r) => /\/operations\//i.test(r.path))).toHaveLength(0);

  const states = await drainVerifyQueue();
  expect(states).toEqual(['pending', 'pending', 'remediated']);
  expect(sandbox.get<ArmManagedCluster>(a)!.properties.apiServerAccessProfile!.authorizedIPRanges).toEqual([RANGES]);
  const stored = (await store.listFindings()).find((f) => f.control === 'api-authorized-ranges' && f.resourceId === a)!;
  expect(stored).toMatchObject({ status: 'drift', action: 'remediated' });
  expect((await store.listAudit()).map((e) => e.event)).toEqual(expect.arrayContaining(['update-started', 'remediated']));
});

test('an update that Azure accepts but that does not take ends as an error, never remediated', async () => {
  const a = pick(fleet, 'a').clusterId;
  sandbox.ignoreWritesTo(new RegExp(`${a.split('/').pop()}$`, 'i'), { method: 'PUT' });
  await clearRangesEvent(a);
  const states = await drainVerifyQueue();
  expect(states[states.length - 1]).toBe('failed');
  const stored = (await store.listFindings()).find((f) => f.control === 'api-authorized-ranges' && f.resourceId === a)!;
  expect(stored.status).toBe('error');
  expect(stored.detail).toMatch(/did not take/);
  expect((await store.listAudit()).map((e) => e.event)).toContain('verify-failed');
});

test('an approval in the Function App answers at once with "started"; the verify queue finishes it', async () => {
  const a = pick(fleet, 'a').clusterId;
  await runtime.engine.sweep([fleet.subscriptionId]); // (a) is compliant: its ranges become the baseline
  await drainVerifyQueue();
  // Auto mode here, so the approval for the same fix is made by hand.
  const cluster = sandbox.get<ArmManagedCluster>(a)!;
  cluster.properties.apiServerAccessProfile = { ...cluster.properties.apiServerAccessProfile, authorizedIPRanges: [] };
  delete (cluster as { eTag?: string }).eTag;
  sandbox.put(cluster);
  const baseline = await store.getBaseline(a);
  expect(baseline).toBeDefined();
  const { approval } = await store.requestApproval({
    control: 'api-authorized-ranges',
    clusterId: a,
    targetId: a,
    detail: 'cleared',
    change: {
      kind: 'cluster-property',
      clusterId: a,
      path: ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'],
      before: [],
      after: baseline,
      needsPerson: false,
      summary: 'restore',
    },
    reason: 'test',
    requestedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
  });
  const result = await runtime.engine.executeApproval(approval, 'Rido');
  expect(result.result).toBe('started');
  expect(await drainVerifyQueue()).toContain('remediated');
  expect((await store.listAudit()).find((e) => e.event === 'remediated' && e.actor === 'Rido')).toBeDefined();
});

test('a verified update whose audit cannot be stored throws (the queue retries the message) instead of ending unaudited', async () => {
  const a = pick(fleet, 'a').clusterId;
  await clearRangesEvent(a);
  // The verifying instance finds its table storage unreachable (nothing listens on the discard port).
  const unreachable = azurite.connectionString.replace(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+/, 'TableEndpoint=http://127.0.0.1:9');
  const verifier = createRuntime({
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto', AKS_NETGUARD_AUTHORIZED_IP_RANGES: RANGES },
    store: TableStateStore.fromConnectionString(unreachable, { tablePrefix: 'verifydead' }),
    pollIntervalMs: 5,
  });
  const states: string[] = [];
  for (let round = 0; round < 10 && !states.includes('threw'); round++) {
    const { receivedMessageItems } = await queue.queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) break;
    for (const m of receivedMessageItems) {
      try {
        states.push(await verifyClusterUpdates(m.messageText, context(), verifier, immediate));
      } catch (err) {
        expect((err as Error).message).toMatch(/storage/i);
        states.push('threw');
      }
      await queue.queue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
  expect(states).toContain('threw');
  expect(states).not.toContain('remediated');
});

test('an update still running when the looks run out ends as an error finding and a Teams notice saying what to check', async () => {
  const a = pick(fleet, 'a').clusterId;
  // The notices go to a real queue, as in the Function App; the bot delivers them to a channel.
  const notices = new QueueClient(azurite.connectionString.replace(/;?$/, ''), `notices-${Date.now()}`);
  await notices.createIfNotExists();
  runtime = createRuntime({
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto', AKS_NETGUARD_AUTHORIZED_IP_RANGES: RANGES },
    store,
    notices: new QueueNoticeSink(notices),
    deferClusterUpdates: immediate,
    pollIntervalMs: 5,
  });
  sandbox.lroPolls = 10_000; // AKS never finishes the update
  await clearRangesEvent(a);
  // The look before the last one: the message as the queue holds it, one look short of giving up.
  const { receivedMessageItems: [first] } = await queue.queue.receiveMessages();
  await queue.queue.deleteMessage(first.messageId, first.popReceipt);
  const update = JSON.parse(Buffer.from(first.messageText, 'base64').toString('utf8')) as PendingClusterUpdate;
  await queue.enqueue({ ...update, attempt: MAX_VERIFY_ATTEMPTS - 1 }, 0);

  expect(await drainVerifyQueue()).toEqual(['pending', 'failed']);
  const stored = (await store.listFindings()).find((f) => f.control === 'api-authorized-ranges' && f.resourceId === a)!;
  expect(stored.status).toBe('error');
  expect(stored.detail).toMatch(/could not verify it: after 120 looks over about \d+ minutes?, the update is still running/);
  expect(stored.detail).toMatch(/provisioning state and its activity log/);
  expect((await store.listAudit()).find((e) => e.event === 'verify-gave-up')).toMatchObject({ intent: update.intent });
  expect(logs.join('\n')).toMatch(/gave up on the update/);

  // The notice reaches Teams.
  const { receivedMessageItems } = await notices.receiveMessages({ numberOfMessages: 32 });
  const queued = receivedMessageItems.map((m) => decodeNotice(m.messageText)).filter((n) => n.kind === 'unverified');
  expect(queued).toHaveLength(1);
  const h = await startHarness(azurite);
  try {
    await h.post(channelMessage(h, 'subscribe'));
    h.connector.calls.length = 0;
    const result = await deliverNotice(queued[0], { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });
    expect(result).toMatchObject({ delivered: true, posted: 1 });
    const card = h.connector.posted()[0].body.attachments[0].content;
    expect(validateCard15(card)).toEqual([]);
    const words = JSON.stringify(card);
    expect(words).toContain('NetGuard could not verify its fix: api-authorized-ranges on');
    expect(words).toContain('provisioning state');
    // Delivered again (a host retry): nothing new is posted.
    expect((await deliverNotice(queued[0], { channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store })).posted).toBe(0);
  } finally {
    await h.connector.stop();
    await notices.deleteIfExists();
  }
});
