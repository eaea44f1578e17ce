// The bot through its real HTTP entry (functions/teamsMessages.ts → CloudAdapter → teams-ai):
// activities as Teams sends them, replies to a connector stand-in, state in Azurite.
import { APPROVER, channelMessage, fixture, pendingApproval, startHarness, TENANT, type Harness } from './harness';
import { useAzurite } from '../helpers/azurite';

const azurite = useAzurite();
let h: Harness;

beforeEach(async () => {
  h = await startHarness(azurite);
});
afterEach(async () => {
  await h.connector.stop();
});

const replyTexts = (harness: Harness) => harness.connector.posted().map((c) => String(c.body.text ?? ''));

test('"subscribe" in a channel thread stores the channel (not the thread) and confirms in the thread', async () => {
  const message = channelMessage(h, 'subscribe');
  const res = await h.post(message);
  expect(res.status).toBe(200);

  const channels = await h.tables.listChannels();
  expect(channels).toHaveLength(1);
  expect(channels[0].channelId).toBe('19:6848757105754c8981c67612732d9aa7@thread.tacv2');
  expect(channels[0].reference.serviceUrl).toBe(h.connector.serviceUrl);
  expect(channels[0].reference.conversation?.tenantId).toBe(TENANT);

  // The confirmation is a reply in the thread the message came from.
  const [reply] = h.connector.posted();
  expect(reply.conversationId).toBe(message.conversation.id);
  expect(reply.body.text).toMatch(/^Subscribed/);

  await h.post(channelMessage(h, 'subscribe'));
  expect(await h.tables.listChannels()).toHaveLength(1);
  expect(replyTexts(h)[1]).toMatch(/Already subscribed/);
});

test('the bot added to a team subscribes the channel and says hello; another member being added does not', async () => {
  const added = fixture('msteams-docs_conversationUpdate_teamMemberAdded_bot-added-to-team.json');
  added.serviceUrl = h.connector.serviceUrl;
  const res = await h.post(added);
  expect(res.status).toBe(200);
  const channels = await h.tables.listChannels();
  expect(channels.map((c) => c.channelId)).toEqual(['19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2']);
  expect(channels[0].teamName).toBe('TestTeam2022');
  expect(replyTexts(h)[0]).toMatch(/NetGuard will post approval requests/);

  await h.tables.unsubscribe(channels[0].channelId);
  const someoneElse = fixture('msteams-docs_conversationUpdate_teamMemberAdded_bot-added-to-team.json');
  someoneElse.serviceUrl = h.connector.serviceUrl;
  someoneElse.membersAdded = [{ id: '29:someone-else', aadObjectId: APPROVER }];
  await h.post(someoneElse);
  expect(await h.tables.listChannels()).toEqual([]);
});

test('"unsubscribe" removes the channel; a second one says it was not subscribed', async () => {
  await h.post(channelMessage(h, 'subscribe'));
  await h.post(channelMessage(h, 'unsubscribe'));
  expect(await h.tables.listChannels()).toEqual([]);
  await h.post(channelMessage(h, 'unsubscribe'));
  expect(replyTexts(h).slice(1)).toEqual([expect.stringMatching(/^Unsubscribed/), expect.stringMatching(/was not subscribed/)]);
});

test('"status" lists open drift and approvals waiting, including ones whose card was never delivered', async () => {
  const approval = await pendingApproval(h);
  await h.store.recordFinding(
    { control: 'http-application-routing', resourceId: approval.clusterId, targetId: approval.targetId, status: 'drift', action: 'approval-requested', detail: 'The add-on is enabled.' },
    new Date(),
  );
  await h.store.recordFinding(
    { control: 'service-mesh', resourceId: approval.clusterId, targetId: approval.targetId, status: 'compliant', action: 'none', detail: 'Istio is on.' },
    new Date(),
  );
  await h.post(channelMessage(h, 'status'));
  const text = replyTexts(h)[0];
  expect(text).toMatch(/1 open drift, 1 approval\(s\) waiting/);
  expect(text).toContain('drift: http-application-routing');
  expect(text).not.toContain('service-mesh');
  expect(text).toContain('(card not delivered yet)');
});

test('anything else gets the help text', async () => {
  await h.post(channelMessage(h, 'what can you do?'));
  expect(replyTexts(h)[0]).toContain('`subscribe`');
});

test('with an app id configured, a request without a Bot Framework token gets 401 and changes nothing', async () => {
  const secured = await startHarness(azurite, { appId: '11111111-2222-3333-4444-555555555555', appPassword: 'test-secret-not-used' });
  try {
    const res = await secured.post(channelMessage(secured, 'subscribe'));
    expect(res.status).toBe(401);
    const forged = await secured.post(channelMessage(secured, 'subscribe'), { authorization: 'Bearer not-a-real-token' });
    expect(forged.status).toBe(401);
    expect(await secured.tables.listChannels()).toEqual([]);
    expect(secured.connector.calls).toEqual([]);
  } finally {
    await secured.connector.stop();
  }
});
