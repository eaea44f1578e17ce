// Notices through the real queue (Azurite) to Teams (connector stand-in), with the connector failing.
import { decodeNotice, deliverNotice, encodeNotice, NOTICE_QUEUE, noticeSinkFromEnvironment } from '../../shared/notify/queueSink';
import type { Notice } from '../../shared/notify/types';
import { teamsNoticeChannels } from '../../shared/teams/delivery';
import { summarize } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { validateCard15 } from './adaptiveCard15';
import { channelMessage, CLUSTER_ID, disableRoutingChange, pendingApproval, startHarness, type Harness } from './harness';

const azurite = useAzurite();
let h: Harness;

beforeEach(async () => {
  h = await startHarness(azurite);
  await h.post(channelMessage(h, 'subscribe', '19:aaaa0000000000000000000000000001@thread.tacv2'));
  await h.post(channelMessage(h, 'subscribe', '19:bbbb0000000000000000000000000002@thread.tacv2'));
  h.connector.calls.length = 0;
});
afterEach(async () => {
  await h.connector.stop();
});

const deps = () => ({ channels: teamsNoticeChannels(h.bot, h.store, h.tables), store: h.store });

const remediated = (): Notice => ({
  kind: 'remediated',
  finding: { control: 'http-application-routing', resourceId: CLUSTER_ID, targetId: CLUSTER_ID, status: 'drift', action: 'remediated', detail: 'Fixed.' },
  change: disableRoutingChange(),
  changedBy: 'bob@contoso.com',
  at: new Date().toISOString(),
});

test('the sink writes base64 JSON to netguard-notices (created on first use) and it decodes back', async () => {
  const sink = noticeSinkFromEnvironment({ AzureWebJobsStorage: azurite.connectionString })!;
  const notice = remediated();
  await sink.enqueue(notice);
  expect(sink.queue.name).toBe(NOTICE_QUEUE);
  const { receivedMessageItems } = await sink.queue.receiveMessages({ numberOfMessages: 32 });
  const mine = receivedMessageItems.map((m) => m.messageText).filter((t) => t === encodeNotice(notice));
  expect(mine).toHaveLength(1);
  expect(decodeNotice(mine[0])).toEqual(notice);
  // The Functions host hands the trigger the parsed JSON; both forms are accepted.
  expect(decodeNotice(JSON.parse(Buffer.from(mine[0], 'base64').toString()))).toEqual(notice);
  expect(() => decodeNotice({ hello: 'world' })).toThrow(/Not a NetGuard notice/);
});

test('a remediation notice: a short valid card in every channel with who changed it and how to undo', async () => {
  const result = await deliverNotice(remediated(), deps());
  expect(result).toMatchObject({ delivered: true, channels: 2, posted: 2 });
  for (const call of h.connector.posted()) {
    const card = call.body.attachments[0].content;
    expect(validateCard15(card)).toEqual([]);
    expect(JSON.stringify(card)).toContain('bob@contoso.com');
    expect(JSON.stringify(card)).toContain('aks-netguard-exempt=http-application-routing');
  }
});

test('the connector answers 500, delivery throws (the host retries), and the retry delivers each card once', async () => {
  const approval = await pendingApproval(h);
  const notice: Notice = { kind: 'approval-requested', approval };
  // The SDK's own retries are part of "answering 500": fail long enough that this attempt gives up.
  h.connector.failNext(1000, 500);
  await expect(deliverNotice(notice, deps())).rejects.toThrow(/Teams delivery failed for 2 of 2 channel/);
  expect(h.connector.posted()).toEqual([]);
  expect((await h.store.getApproval(approval.id))?.delivered).toBeFalsy();

  const attemptsPerChannel = h.connector.calls.length / 2;

  // Teams recovers: the host's retry delivers one card per channel.
  h.connector.recover();
  await deliverNotice(notice, deps());
  expect(h.connector.posted()).toHaveLength(2);

  // Partial failure: the first channel's attempt fails, the second goes through; the retry only
  // posts to the first.
  const second = await pendingApproval(h, { control: 'api-authorized-ranges' });
  h.connector.calls.length = 0;
  h.connector.failNext(attemptsPerChannel, 503);
  await expect(deliverNotice({ kind: 'approval-requested', approval: second }, deps())).rejects.toThrow(/failed for 1 of 2/);
  expect(h.connector.posted()).toHaveLength(1);
  await deliverNotice({ kind: 'approval-requested', approval: second }, deps());
  expect(new Set(h.connector.posted().map((c) => c.conversationId)).size).toBe(2);
  expect(h.connector.posted()).toHaveLength(2);

  // Another host retry of the first notice posts nothing again.
  const before = h.connector.posted().length;
  await deliverNotice(notice, deps());
  expect(h.connector.posted()).toHaveLength(before);
  expect((await h.store.getApproval(approval.id))?.delivered).toBe(true);
});

test('an approval decided before its card went out is not posted', async () => {
  const approval = await pendingApproval(h);
  await h.store.updateApproval({ ...approval, state: 'rejected', decidedBy: 'cli', decidedAt: new Date().toISOString() });
  const result = await deliverNotice({ kind: 'approval-requested', approval }, deps());
  expect(result).toMatchObject({ delivered: false, skipped: 'it is already rejected' });
  expect(h.connector.posted()).toEqual([]);
});

test('the digest notice: posted once per channel, and the next day it says what changed since', async () => {
  const findings = [
    { control: 'network-policy' as const, resourceId: CLUSTER_ID, targetId: CLUSTER_ID, status: 'drift' as const, action: 'reported' as const, detail: 'x' },
    { control: 'service-mesh' as const, resourceId: CLUSTER_ID, targetId: CLUSTER_ID, status: 'compliant' as const, action: 'none' as const, detail: 'x' },
  ];
  const day1: Notice = { kind: 'digest', report: { findings, summary: summarize(findings, 1) }, at: '2026-11-19T06:00:00.000Z' };
  expect(await deliverNotice(day1, deps())).toMatchObject({ delivered: true, posted: 2 });
  expect(await deliverNotice(day1, deps())).toMatchObject({ posted: 0 });
  const first = h.connector.posted()[0].body.attachments[0].content;
  expect(validateCard15(first)).toEqual([]);
  expect(JSON.stringify(first)).toContain('This is the first digest.');

  const fixed = [{ ...findings[0], status: 'compliant' as const, action: 'none' as const }, findings[1]];
  const day2: Notice = { kind: 'digest', report: { findings: fixed, summary: summarize(fixed, 1) }, at: '2026-11-20T06:00:00.000Z' };
  await deliverNotice(day2, deps());
  const second = h.connector.posted()[2].body.attachments[0].content;
  expect(validateCard15(second)).toEqual([]);
  expect(JSON.stringify(second)).toContain('no longer drifting: network-policy');
  // Both days are bars of the chart: yesterday with one drift, today with none.
  expect(JSON.stringify(second)).toMatch(/11-19.*1 drift.*11-20.*0 drift/);
});

test("a sweep's digest names its run: delivery reads the combined report from the run store", async () => {
  const { SweepRunStore } = await import('../../shared/sweep/runs');
  const runs = SweepRunStore.fromConnectionString(azurite.connectionString, `runs${Date.now().toString(36)}`);
  const sub = CLUSTER_ID.split('/')[2];
  const findings = [{ control: 'network-policy' as const, resourceId: CLUSTER_ID, targetId: CLUSTER_ID, status: 'drift' as const, action: 'reported' as const, detail: 'x' }];
  await runs.createRun('run-digest-1', [sub], new Date('2026-11-21T06:00:00Z'));
  await runs.finishSubscription('run-digest-1', sub, { state: 'done', report: { findings, summary: summarize(findings, 1) }, attempts: 1, at: new Date('2026-11-21T06:01:00Z') });

  const notice: Notice = { kind: 'digest', runId: 'run-digest-1', at: '2026-11-21T06:02:00.000Z' };
  expect(encodeNotice(notice).length).toBeLessThan(1024);
  expect(await deliverNotice(notice, { ...deps(), reports: runs })).toMatchObject({ delivered: true, posted: 2 });
  expect(JSON.stringify(h.connector.posted()[0].body.attachments[0].content)).toContain('network-policy');
  // Without a run store the digest cannot be built: delivery fails (and is retried), it never posts an empty digest.
  await expect(deliverNotice({ ...notice, at: '2026-11-21T06:03:00.000Z' }, deps())).rejects.toThrow(/run-digest-1/);
});
