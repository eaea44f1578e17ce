// `aks-netguard serve`: POST /api/events as an Event Grid webhook over real HTTP, running the same
// handler as the function, with the real SDK clients against the ARM sandbox and Azurite for state.
import { randomUUID } from 'node:crypto';
import { startLocalServer, type LocalServer } from '../../shared/cli/serve';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import type { TableStateStore } from '../../shared/store/tables';
import { sampleEvent, sampleText } from '../events/eventSamples';
import { useAzurite } from '../helpers/azurite';
import { serveInProcess } from '../helpers/serveRig';
import { freshStore, startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, netGuardRulesIn, OP, pick, ruleIdOf, rulePutsThatTook, runtimeFor, seedFleet } from '../functions/eventRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let store: TableStateStore;
let server: LocalServer;
let logLines: string[];


beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
  store = freshStore(azurite.connectionString);
  logLines = [];
  server = await startLocalServer({ port: 0, runtime: runtimeFor(sandbox, { store }), log: (l) => logLines.push(l), messages: async () => undefined });
});

afterEach(async () => {
  await server.close();
  await sandbox.stop();
});

async function post(body: string, headers: Record<string, string> = {}, url = `${server.url}/api/events`): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const notification = { 'aeg-event-type': 'Notification' };

function deleteRuleOfA(): string {
  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  return nsgId;
}

test('the validation handshake: the published validation event gets the published {validationResponse}, no ARM request', async () => {
  const r = await post(sampleText('eventgrid-schema/SubscriptionValidationEvent.json'), { 'aeg-event-type': 'SubscriptionValidation' });
  expect(r.status).toBe(200);
  expect(r.json).toEqual(JSON.parse(sampleText('eventgrid-schema/SubscriptionValidationResponse.json')));
  expect(sandbox.countRequests()).toBe(0);
});

test('aeg-event-type SubscriptionValidation without a validation event: 400', async () => {
  const r = await post(sampleText('eventgrid-schema/subscription_ResourceWriteSuccess.json'), { 'aeg-event-type': 'SubscriptionValidation' });
  expect(r.status).toBe(400);
  expect(r.json.error).toMatch(/no validation event/);
  expect(sandbox.countRequests()).toBe(0);
});

test('a Notification batch (an unrelated published event and a rule delete): 200, the rule is re-created', async () => {
  const nsgId = deleteRuleOfA();
  const batch = [sampleEvent('eventgrid-schema/subscription_ResourceWriteSuccess.json'), fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))];
  const r = await post(JSON.stringify(batch), notification);
  expect(r.status).toBe(200);
  expect(r.json.summary).toMatchObject({ resources: 1, remediated: 1, errors: 0 });
  expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  const lines = logLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  expect(lines.map((l) => l.outcome)).toEqual(['ignored', 'reconciled']);
});

test('CloudEvents: the OPTIONS abuse-protection handshake, then a CloudEvents delivery', async () => {
  const origin = 'eventgrid.azure.net';
  const handshake = await fetch(`${server.url}/api/events`, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': origin } });
  expect(handshake.status).toBe(200);
  expect(handshake.headers.get('webhook-allowed-origin')).toBe(origin);

  const nsgId = deleteRuleOfA();
  const r = await post(JSON.stringify(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId), { schema: 'cloudevents' })), { 'content-type': 'application/cloudevents+json; charset=utf-8' });
  expect(r.status).toBe(200);
  expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
});

test('malformed input (the published CloudEvents sample that is not JSON): 400 naming the problem, zero ARM requests', async () => {
  const r = await post(sampleText('cloudevents-schema/resource-group_ResourceActionSuccess.cloudevents.AS-PUBLISHED-INVALID-JSON.txt'), notification);
  expect(r.status).toBe(400);
  expect(r.json.error).toMatch(/not valid JSON.*line \d+, column \d+/);
  expect(sandbox.countRequests()).toBe(0);
});

test('a retryable failure answers 500 (Event Grid redelivers); the redelivery of the same event answers 200 and repairs', async () => {
  const nsgId = deleteRuleOfA();
  sandbox.failNext({ method: 'PUT', pathPattern: /securityRules\//i, status: 503, headers: { 'retry-after-ms': '1' }, times: 4 });
  const body = JSON.stringify([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))]);
  const first = await post(body, notification);
  expect(first.status).toBe(500);
  expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
  const second = await post(body, notification);
  expect(second.status).toBe(200);
  expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
});

test('other methods and paths are refused clearly', async () => {
  expect((await fetch(`${server.url}/api/events`)).status).toBe(405);
  const unknown = await post('{}', {}, `${server.url}/api/nothing`);
  expect(unknown.status).toBe(404);
  expect(unknown.json.error).toMatch(/\/api\/events/);
});

test('`aks-netguard serve --port 0` prints where it listens, serves the webhook and stops cleanly when interrupted', async () => {
  const served = await serveInProcess({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: azurite.connectionString });
  try {
    const url = served.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const validation = await post(sampleText('eventgrid-schema/SubscriptionValidationEvent.json'), { 'aeg-event-type': 'SubscriptionValidation' }, `${url}/api/events`);
    expect(validation.json).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    // A compliant NSG: read, judged, nothing written.
    const event = fleetEvent(OP.ruleWrite, ruleIdOf(pick(fleet, 'a').nsgIds[0]), { id: randomUUID() });
    const r = await post(JSON.stringify([event]), notification, `${url}/api/events`);
    expect(r.status).toBe(200);
    expect(r.json.summary).toMatchObject({ resources: 1, drift: 0 });
    expect(await served.stop()).toBe(0);
    expect(served.stderr()).toContain('Stopped.');
    await expect(fetch(`${url}/api/events`, { method: 'POST', body: '[]' })).rejects.toThrow();
  } finally {
    await served.stop().catch(() => undefined);
  }
});

test('`serve` also answers the Teams bot on POST /api/messages, with the same bot as the function (subscribe → stored, reply sent)', async () => {
  const { ConnectorStandIn } = await import('../teams/connectorStandIn');
  const { fixture } = await import('../teams/harness');
  const connector = await ConnectorStandIn.start();
  const served = await serveInProcess({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: azurite.connectionString });
  try {
    const url = served.url;
    const activity = fixture('teams.net_message_channel_mention.json');
    activity.serviceUrl = connector.serviceUrl;
    activity.text = '<at>NetGuard</at> help';
    const res = await fetch(`${url}/api/messages`, { method: 'POST', body: JSON.stringify(activity), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    const replies = connector.posted();
    expect(replies).toHaveLength(1);
    expect(JSON.stringify(replies[0].body)).toMatch(/subscribe/i);
    // Not JSON: refused before the bot.
    expect((await fetch(`${url}/api/messages`, { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } })).status).toBe(400);
  } finally {
    await served.stop().catch(() => undefined);
    await connector.stop();
  }
}, 60_000);
