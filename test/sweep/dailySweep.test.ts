// The daily sweep end to end: timer → Azure Storage queue → one sweep per subscription → run tracked
// in Azure Tables → one digest notice. Real Azurite queues and tables, the ARM sandbox through the
// real SDK clients, and a stand-in for the host's queue listener (test/sweep/queueHost.ts).
import { InvocationContext, type Timer } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { benchSubscriptionId, seedCompliantCluster } from '../../bench/fleet';
import { dailySweep } from '../../functions/dailySweep';
import { sweepSubscription } from '../../functions/sweepSubscription';
import { loadSettings } from '../../shared/config';
import { Engine } from '../../shared/engine/engine';
import { decodeNotice, QueueNoticeSink } from '../../shared/notify/queueSink';
import type { Notice } from '../../shared/notify/types';
import type { Runtime } from '../../shared/runtime';
import { ArmSandbox } from '../../testkit/armServer';
import { completeRunIfFinished, SWEEP_POISON_QUEUE, type FanOutDeps, type SweepMessage } from '../../shared/sweep/fanout';
import { SweepRunStore } from '../../shared/sweep/runs';
import type { RunReport } from '../../shared/types';
import { startAzurite, type AzuriteInstance } from '../helpers/azurite';
import { gatewayFor } from '../helpers/sandboxEnv';
import { drainQueue, takeAll } from './queueHost';

let azurite: AzuriteInstance;
let sandbox: ArmSandbox;
let counter = 0;

// Azurite's readiness is polled; the hook's limit is only a guard, ample for a loaded machine.
beforeAll(async () => {
  [azurite, sandbox] = await Promise.all([startAzurite(), ArmSandbox.start()]);
}, 10 * 60_000);
afterAll(async () => {
  await Promise.all([azurite?.stop(), sandbox?.stop()]);
});
afterEach(() => sandbox.clearFaults());

const timer = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: '', next: '', lastUpdated: '' } } as Timer;

interface Rig {
  runtime: Runtime;
  deps: FanOutDeps;
  queue: QueueClient;
  poison: QueueClient;
  notices: QueueClient;
  logs: string[];
}

/** Fresh queues and table per test (unique names), a runtime whose SDK pipeline does not retry by itself. */
function rig(env: Record<string, string>, maxDequeueCount = 5): Rig {
  counter++;
  const name = `sweep${process.pid}x${counter}`;
  const cs = azurite.connectionString;
  const insecure = { allowInsecureConnection: true } as object;
  const queue = new QueueClient(cs, name, insecure);
  const poison = new QueueClient(cs, `${name}-poison`, insecure);
  const notices = new QueueClient(cs, `${name}-notices`, insecure);
  const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...env });
  // maxRetries 0: a 503 reaches NetGuard instead of being absorbed by the SDK's own retries.
  const arm = gatewayFor(sandbox, 0);
  const noticeSink = new QueueNoticeSink(notices);
  const runtime: Runtime = { settings, arm, engine: new Engine({ arm, settings }), notices: noticeSink };
  const logs: string[] = [];
  const deps: FanOutDeps = { runs: SweepRunStore.fromConnectionString(cs, `runs${name}`), queue, notices: noticeSink, maxDequeueCount, log: (l) => logs.push(l) };
  return { runtime, deps, queue, poison, notices, logs };
}

function seedSubscription(index: number, clusters: number): { subscriptionId: string; clusterIds: string[] } {
  const subscriptionId = benchSubscriptionId(900 + index);
  const clusterIds = Array.from({ length: clusters }, (_, i) => seedCompliantCluster(sandbox, subscriptionId, index * 10 + i).clusterId);
  return { subscriptionId, clusterIds };
}

const clusterListOf = (sub: string) => new RegExp(`^/subscriptions/${sub}/providers/Microsoft\\.ContainerService/managedClusters$`, 'i');
const listCalls = (sub: string) => sandbox.countRequests({ method: 'GET', path: clusterListOf(sub) });
const context = (logs: string[]) => new InvocationContext({ functionName: 'dailySweep', logHandler: (_l, ...a) => logs.push(a.join(' ')) });
const digests = (notices: Notice[]) => notices.filter((n): n is Extract<Notice, { kind: 'digest' }> => n.kind === 'digest');
const subscriptionsIn = (report: RunReport) => new Set(report.findings.map((f) => f.resourceId.split('/')[2].toLowerCase()));

test('one subscription failing with 503 is retried alone while the others finish, and the digest is queued once', async () => {
  const subs = [seedSubscription(1, 2), seedSubscription(2, 2), seedSubscription(3, 1)];
  const [a, b, c] = subs.map((s) => s.subscriptionId);
  const r = rig({ AKS_NETGUARD_SUBSCRIPTIONS: [a, b, c].join(',') });
  sandbox.failNext({ method: 'GET', pathPattern: clusterListOf(b), status: 503 });

  const fanOut = await dailySweep(timer, context(r.logs), r.runtime, r.deps);
  expect(fanOut.subscriptions).toEqual([a, b, c]);
  const queued = await r.queue.peekMessages({ numberOfMessages: 32 });
  const messages = queued.peekedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as SweepMessage);
  expect(messages).toEqual(expect.arrayContaining([a, b, c].map((subscriptionId) => ({ runId: fanOut.runId, subscriptionId, attempt: 1 }))));
  expect(messages).toHaveLength(3);

  const invocations = await drainQueue(r.queue, r.poison, (m, ctx) => sweepSubscription(m, ctx, r.runtime, r.deps), { maxDequeueCount: 5 });

  // b failed once and succeeded on its second delivery; a and c were read exactly once.
  expect(invocations.filter((i) => !i.ok)).toHaveLength(1);
  expect(invocations.filter((i) => i.ok).map((i) => i.dequeueCount).sort()).toEqual([1, 1, 2]);
  expect([listCalls(a), listCalls(b), listCalls(c)]).toEqual([1, 2, 1]);
  expect(r.logs.some((l) => l.includes(b) && /attempt 1 of 5, the queue will retry/.test(l))).toBe(true);

  const notices = (await takeAll<unknown>(r.notices)).map(decodeNotice);
  expect(digests(notices)).toHaveLength(1);
  // The digest names its run (a queue message is too small for an estate's report); the report is in the run store.
  const digest = digests(notices)[0];
  expect(digest.report).toBeUndefined();
  expect(digest.runId).toBe(fanOut.runId);
  const report = await r.deps.runs.combinedReport(digest.runId!);
  expect(report.summary.resources).toBe(5);
  expect(report.summary.errors).toBe(0);
  expect(subscriptionsIn(report)).toEqual(new Set([a, b, c].map((s) => s.toLowerCase())));
  for (const id of subs.flatMap((s) => s.clusterIds)) expect(report.findings.some((f) => f.resourceId === id && f.control === 'node-ssh-deny' && f.status === 'compliant')).toBe(true);

  expect((await r.deps.runs.getRun(fanOut.runId))?.state).toBe('completed');
  expect((await r.poison.getProperties()).approximateMessagesCount).toBe(0);
});

test('a message that always fails ends in the poison queue, its subscription is reported failed and the run still completes', async () => {
  const ok = seedSubscription(4, 1);
  const broken = seedSubscription(5, 1);
  const r = rig({ AKS_NETGUARD_SUBSCRIPTIONS: `${ok.subscriptionId},${broken.subscriptionId}` }, 3);
  sandbox.failNext({ method: 'GET', pathPattern: clusterListOf(broken.subscriptionId), status: 503, times: 1000 });

  const fanOut = await dailySweep(timer, context(r.logs), r.runtime, r.deps);
  const invocations = await drainQueue(r.queue, r.poison, (m, ctx) => sweepSubscription(m, ctx, r.runtime, r.deps), { maxDequeueCount: 3, logs: r.logs });

  expect(invocations.filter((i) => !i.ok).map((i) => i.dequeueCount)).toEqual([1, 2, 3]);
  expect(listCalls(broken.subscriptionId)).toBe(3);
  const poisoned = await takeAll<SweepMessage>(r.poison);
  expect(poisoned).toEqual([{ runId: fanOut.runId, subscriptionId: broken.subscriptionId, attempt: 1 }]);
  expect(r.logs.some((l) => /POISON/.test(l) && l.includes(broken.subscriptionId) && l.includes(SWEEP_POISON_QUEUE))).toBe(true);

  const notices = (await takeAll<unknown>(r.notices)).map(decodeNotice);
  expect(digests(notices)).toHaveLength(1);
  const report = await r.deps.runs.combinedReport(digests(notices)[0].runId!);
  const scope = `/subscriptions/${broken.subscriptionId}`;
  const failures = report.findings.filter((f) => f.resourceId === scope);
  expect(failures.length).toBeGreaterThan(0);
  expect(failures.every((f) => f.status === 'error' && f.detail.includes('503') && f.detail.includes(SWEEP_POISON_QUEUE))).toBe(true);
  expect(report.findings.some((f) => f.resourceId === ok.clusterIds[0] && f.status === 'compliant')).toBe(true);
  expect(report.summary.resources).toBe(1);
  const run = await r.deps.runs.getRun(fanOut.runId);
  expect(run?.state).toBe('completed');
  const states = await r.deps.runs.listSubscriptions(fanOut.runId);
  expect(states.find((s) => s.subscriptionId === broken.subscriptionId)).toMatchObject({ state: 'failed', attempts: 3 });
});

test('finishers racing to complete a run queue the digest exactly once', async () => {
  const r = rig({});
  const subs = ['1', '2', '3', '4'].map((n) => benchSubscriptionId(950 + Number(n)));
  const runId = `race-${counter}`;
  await r.deps.runs.createRun(runId, subs, new Date());
  const empty: RunReport = { findings: [], summary: { resources: 0, drift: 0, remediated: 0, approvalRequested: 0, exempt: 0, errors: 0 } };
  for (const s of subs) await r.deps.runs.finishSubscription(runId, s, { state: 'done', report: empty, attempts: 1, at: new Date() });

  const winners = await Promise.all(Array.from({ length: 8 }, (_, i) => completeRunIfFinished(runId, `message-${i}`, r.deps)));
  expect(winners.filter(Boolean)).toHaveLength(1);
  expect(digests((await takeAll<unknown>(r.notices)).map(decodeNotice))).toHaveLength(1);
  // Once completed, nobody completes it again.
  expect(await completeRunIfFinished(runId, 'late', r.deps)).toBe(false);
});

test('a run is not completed while a subscription is still pending', async () => {
  const r = rig({});
  const [s1, s2] = [benchSubscriptionId(960), benchSubscriptionId(961)];
  const runId = `pending-${counter}`;
  await r.deps.runs.createRun(runId, [s1, s2], new Date());
  const empty: RunReport = { findings: [], summary: { resources: 0, drift: 0, remediated: 0, approvalRequested: 0, exempt: 0, errors: 0 } };
  await r.deps.runs.finishSubscription(runId, s1, { state: 'done', report: empty, attempts: 1, at: new Date() });
  expect(await completeRunIfFinished(runId, 'm1', r.deps)).toBe(false);
  expect((await r.deps.runs.getRun(runId))?.state).toBe('open');
  expect((await r.notices.exists()) ? (await r.notices.getProperties()).approximateMessagesCount : 0).toBe(0);
});

test('a large partial report is stored in chunks and read back whole', async () => {
  const r = rig({});
  const sub = benchSubscriptionId(970);
  const runId = `chunks-${counter}`;
  await r.deps.runs.createRun(runId, [sub], new Date());
  // ~4 MB of findings: more than one entity (1 MiB) can hold.
  const findings = Array.from({ length: 6000 }, (_, i) => ({
    control: 'node-ssh-deny' as const,
    resourceId: `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-${i}`,
    targetId: `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-${i}`,
    status: 'drift' as const,
    action: 'reported' as const,
    detail: `Finding ${i}: ${'SSH from the cluster subnets reaches the nodes; '.repeat(12)}ü€`,
  }));
  const report: RunReport = { findings, summary: { resources: 6000, drift: 6000, remediated: 0, approvalRequested: 0, exempt: 0, errors: 0 } };
  expect(JSON.stringify(report).length).toBeGreaterThan(3_000_000);
  await r.deps.runs.finishSubscription(runId, sub, { state: 'done', report, attempts: 1, at: new Date() });
  expect(await r.deps.runs.loadPartialReport(runId, sub)).toEqual(report);
  expect((await r.deps.runs.combinedReport(runId)).summary).toEqual(report.summary);
});

test('without AKS_NETGUARD_SUBSCRIPTIONS the timer fans out to every subscription the identity lists', async () => {
  const own = await ArmSandbox.start({ subscriptions: [benchSubscriptionId(980), benchSubscriptionId(981)] });
  try {
    const r = rig({});
    const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: own.endpoint });
    const arm = gatewayFor(own, 0);
    const runtime: Runtime = { ...r.runtime, settings, arm, engine: new Engine({ arm, settings }) };
    const fanOut = await dailySweep(timer, context(r.logs), runtime, r.deps);
    expect(fanOut.subscriptions.sort()).toEqual([benchSubscriptionId(980), benchSubscriptionId(981)]);
    const queued = await takeAll<SweepMessage>(r.queue);
    expect(queued.map((m) => m.subscriptionId).sort()).toEqual(fanOut.subscriptions);
  } finally {
    await own.stop();
  }
});
