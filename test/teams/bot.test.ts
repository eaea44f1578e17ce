// The bot through its real HTTP entry (functions/teamsMessages.ts → CloudAdapter → teams-ai):
// activities as Teams sends them, replies to a connector stand-in, state in Azurite.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { teamsMessages } from '../../functions/teamsMessages';
import { NetGuardBot } from '../../shared/teams/bot';
import { TeamsTables } from '../../shared/teams/channels';
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

test('with MicrosoftAppTenantId set, a subscribe (or the bot being added) from another tenant stores nothing and gets no reply', async () => {
  const stranger = 'http://127.0.0.1:9/stranger/';
  const foreign = '11111111-2222-4333-8444-555555555555';
  const message = channelMessage(h, 'subscribe', '19:stranger@thread.tacv2');
  message.serviceUrl = stranger;
  message.conversation.tenantId = foreign;
  message.channelData.tenant.id = foreign;
  await h.post(message);
  const added = fixture('msteams-docs_conversationUpdate_teamMemberAdded_bot-added-to-team.json');
  added.serviceUrl = h.connector.serviceUrl;
  added.conversation.tenantId = foreign;
  added.channelData.tenant.id = foreign;
  await h.post(added);
  expect(await h.tables.listChannels()).toEqual([]);
  expect(h.connector.posted()).toEqual([]);
  // The same subscribe from NetGuard's own tenant still works.
  await h.post(channelMessage(h, 'subscribe'));
  expect((await h.tables.listChannels()).map((c) => c.reference.serviceUrl)).toEqual([h.connector.serviceUrl]);
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

// ---------------------------------------------------------------- fail closed (issue 9, item 7)

/** A connector that is not NetGuard's: listens on this machine's first non-loopback address. */
async function strangerConnector(): Promise<{ serviceUrl: string; hits: string[]; stop: () => Promise<void> }> {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  const hits: string[] = [];
  if (!address) return { serviceUrl: 'http://stranger.invalid/', hits, stop: async () => undefined };
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"1:1"}');
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    serviceUrl: `http://${address}:${(server.address() as AddressInfo).port}/`,
    hits,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function functionRequest(activity: Record<string, unknown>, headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: 'https://netguard.example/api/messages',
    headers: { 'content-type': 'application/json', ...headers },
    body: { string: JSON.stringify(activity) },
  });
}

const context = () => new InvocationContext({ functionName: 'teamsMessages', invocationId: 'test', logHandler: () => undefined });

/** Runs fn with process.env changed as given (undefined deletes), as the Function App would see it. */
async function withEnv<T>(changes: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const STRANGER_CHANNEL = '19:5772e1d6d4b34a6a9d8c6de0eefc4a1a@thread.tacv2';

test('the Function App without MicrosoftAppId: a stranger cannot subscribe a channel with their own serviceUrl (401, nothing stored, nothing sent)', async () => {
  const stranger = await strangerConnector();
  try {
    const message = channelMessage(h, 'subscribe', STRANGER_CHANNEL);
    message.serviceUrl = stranger.serviceUrl;
    const res = await withEnv({ MicrosoftAppId: undefined, AzureWebJobsStorage: azurite.connectionString }, () => teamsMessages(functionRequest(message), context()));
    expect(res.status).toBe(401);
    const channels = await TeamsTables.fromConnectionString(azurite.connectionString).listChannels();
    expect(channels.map((c) => c.channelId)).not.toContain(STRANGER_CHANNEL);
    expect(stranger.hits).toEqual([]);
  } finally {
    await stranger.stop();
  }
});

test('the Function App with MicrosoftAppId but no storage: an unauthenticated POST gets 401, not the configuration error', async () => {
  const env = { MicrosoftAppId: '11111111-2222-3333-4444-555555555555', MicrosoftAppPassword: 'bot-password-never-shown', AzureWebJobsStorage: undefined };
  const headerSets: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-a-real-token' }, { authorization: 'Basic Ym90OnBhc3N3b3Jk' }];
  for (const headers of headerSets) {
    const res = await withEnv(env, () => teamsMessages(functionRequest(channelMessage(h, 'subscribe'), headers), context()).catch((err: Error) => ({ status: 500, body: err.message })));
    expect(res.status).toBe(401);
    expect(JSON.stringify(res)).not.toMatch(/AzureWebJobsStorage|bot-password-never-shown/);
  }
  // A body that is not even JSON is no different for a caller without a token.
  const notJson = new HttpRequest({ method: 'POST', url: 'https://netguard.example/api/messages', headers: { 'content-type': 'application/json' }, body: { string: '{' } });
  expect((await withEnv(env, () => teamsMessages(notJson, context()))).status).toBe(401);
});

test('the bot as the Function App builds it (no app id, no local allowance) refuses every request', async () => {
  const bot = new NetGuardBot({ settings: h.settings, store: h.store, tables: h.tables, executor: h.executor });
  const res = await bot.process({ method: 'POST', headers: { 'content-type': 'application/json' }, body: channelMessage(h, 'subscribe') });
  expect(res.status).toBe(401);
  expect(await h.tables.listChannels()).toEqual([]);
  expect(h.connector.calls).toEqual([]);
});

test('serve’s local bot (no app id) answers only loopback connectors: a stranger’s serviceUrl is refused and nothing is stored', async () => {
  const stranger = await strangerConnector();
  try {
    const message = channelMessage(h, 'subscribe', STRANGER_CHANNEL);
    message.serviceUrl = stranger.serviceUrl;
    const res = await h.post(message);
    expect(res.status).toBe(403);
    expect(await h.tables.listChannels()).toEqual([]);
    expect(stranger.hits).toEqual([]);
  } finally {
    await stranger.stop();
  }
});

test('without an app id, a card is never posted to a stored channel whose serviceUrl is not loopback', async () => {
  const stranger = await strangerConnector();
  try {
    const message = channelMessage(h, 'subscribe', STRANGER_CHANNEL);
    await h.tables.subscribe({
      channelId: STRANGER_CHANNEL,
      reference: { serviceUrl: stranger.serviceUrl, channelId: 'msteams', conversation: { id: STRANGER_CHANNEL, isGroup: true, conversationType: 'channel', name: 'x' }, bot: message.recipient, user: message.from },
      subscribedBy: 'someone',
      subscribedAt: new Date().toISOString(),
    });
    const approval = await pendingApproval(h);
    await expect(h.bot.postToSubscribed(`test-${approval.id}`, await h.bot.approvalCard(approval))).rejects.toThrow(/non-loopback serviceUrl/);
    expect(stranger.hits).toEqual([]);
  } finally {
    await stranger.stop();
  }
});

test('the Function App with a bot registration the SDK rejects (managed identity without tenant): 401 to the caller, the reason only in the log', async () => {
  const env = { MicrosoftAppId: '11111111-2222-3333-4444-555555555555', MicrosoftAppType: 'UserAssignedMSI', MicrosoftAppTenantId: undefined, AzureWebJobsStorage: undefined };
  // A token-shaped bearer (header.claims.signature) claiming the Bot Framework as issuer.
  const token = ['{"alg":"RS256"}', '{"iss":"https://api.botframework.com"}', 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');
  const warnings: string[] = [];
  const ctx = new InvocationContext({ functionName: 'teamsMessages', invocationId: 'test', logHandler: (level, ...args) => level === 'warning' && warnings.push(args.join(' ')) });
  const res = await withEnv(env, () => teamsMessages(functionRequest(channelMessage(h, 'subscribe'), { authorization: `Bearer ${token}` }), ctx).catch((err: Error) => ({ status: 500, body: err.message })));
  expect(res.status).toBe(401);
  expect(JSON.stringify(res)).not.toMatch(/TenantId|MSI/);
  expect(warnings.join('\n')).toMatch(/misconfigured.*MicrosoftAppTenantId/);
});
