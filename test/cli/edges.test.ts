// The edges of the CLI and `serve`, tried as an attacker or a bad day would (issue 9, items 3, 7, 8):
// events about subscriptions outside AKS_NETGUARD_SUBSCRIPTIONS, resource ids that would change the
// request URL, oversized input, browser requests to `serve`, a malformed AzureWebJobsStorage. Every
// case is judged on what reaches the ARM sandbox (its request recording) and what the user sees.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { startLocalServer, type LocalServer } from '../../shared/cli/serve';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { useCliRig } from '../helpers/cliRig';
import { freshStore } from '../helpers/sandboxEnv';
import { fleetEvent, netGuardRulesIn, OP, pick, ruleIdOf, runtimeFor } from '../functions/eventRig';
import { serveInProcess } from '../helpers/serveRig';

const rig = useCliRig('edges');
let sandbox: ArmSandbox;
let fleet: SeededFleet;
beforeEach(() => {
  ({ sandbox, fleet } = rig);
});
const { cli, eventFile } = rig;

function deleteRuleOfA(): string {
  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  return nsgId;
}

/** Another subscription: the only one NetGuard is told to act in. */
const OTHER_SUBSCRIPTION = '11111111-2222-4333-8444-555555555555';

/** The ids the issue saw followed as given, each paired with the operation that routes it. */
function hostileIds(): Array<[string, string, string]> {
  const nsgId = pick(fleet, 'a').nsgIds[0];
  const clusterId = pick(fleet, 'e').clusterId;
  const rg = `/subscriptions/${fleet.subscriptionId}/resourceGroups/${fleet.resourceGroup}`;
  return [
    ['"/subscriptions/.." (became a tenant-level GET)', OP.nsgWrite, `/subscriptions/../providers/Microsoft.Network/networkSecurityGroups/x`],
    ['"managedClusters/." (listed the resource group)', OP.clusterWrite, `${rg}/providers/Microsoft.ContainerService/managedClusters/.`],
    ['"?api-version=1&y=" (added query parameters)', OP.nsgWrite, `${nsgId}?api-version=1&y=`],
    ['a ".." segment inside', OP.ruleWrite, `${nsgId}/securityRules/../../networkSecurityGroups/other/securityRules/r`],
    ['an encoded dot segment', OP.clusterWrite, `${rg}/providers/Microsoft.ContainerService/managedClusters/%2e%2e`],
    ['a fragment', OP.clusterWrite, `${clusterId}#x`],
    ['a control character', OP.clusterWrite, `${clusterId}\n`],
    ['a subscription that is not a GUID', OP.nsgWrite, nsgId.replace(fleet.subscriptionId, 'not-a-guid')],
  ];
}

describe('handle-event: resource ids that would change the request URL are malformed (exit 2, zero ARM requests)', () => {
  test.each([0, 1, 2, 3, 4, 5, 6, 7])('case %i', async (i) => {
    const [name, operation, resourceId] = hostileIds()[i];
    const r = await cli(['handle-event', eventFile(fleetEvent(operation, resourceId)), '--json']);
    expect({ name, code: r.code }).toEqual({ name, code: 2 });
    expect(r.stderr).toMatch(/malformed event input: .*not a well-formed Azure resource id/);
    expect(r.stdout).toBe('');
    expect(sandbox.countRequests()).toBe(0);
  });
});

describe('stay in scope: an event about a subscription outside AKS_NETGUARD_SUBSCRIPTIONS', () => {
  const scoped = { AKS_NETGUARD_SUBSCRIPTIONS: OTHER_SUBSCRIPTION, AKS_NETGUARD_MODE: 'auto', AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24' };

  test('handle-event: a rule delete and a cluster write are acknowledged and logged, with zero ARM requests', async () => {
    const nsgId = deleteRuleOfA();
    const events = [fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)), fleetEvent(OP.clusterWrite, pick(fleet, 'e').clusterId)];
    const r = await cli(['handle-event', eventFile(events), '--json'], { env: scoped });
    expect(r.code).toBe(0);
    expect(sandbox.countRequests()).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
    expect((JSON.parse(r.stdout) as RunReport).findings).toEqual([]);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{"netguard":"event"')).map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.outcome, l.reason])).toEqual([
      ['ignored', 'out-of-scope'],
      ['ignored', 'out-of-scope'],
    ]);
  });

  test('the same events for a subscription in scope are acted on (the scope is what stops them)', async () => {
    const nsgId = deleteRuleOfA();
    const r = await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))), '--json'], {
      env: { ...scoped, AKS_NETGUARD_SUBSCRIPTIONS: `${OTHER_SUBSCRIPTION},${fleet.subscriptionId.toUpperCase()}` },
    });
    expect(r.code).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('sweep --subscription outside the scope is refused before any request (exit 2)', async () => {
    const r = await cli(['sweep', '--subscription', fleet.subscriptionId, '--mode', 'auto'], { env: scoped });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside AKS_NETGUARD_SUBSCRIPTIONS/);
    expect(sandbox.countRequests()).toBe(0);
  });
});

describe('handle-event: input over 1 MiB is refused before parsing (exit 2)', () => {
  test('a 20 MB event from a file', async () => {
    const event = fleetEvent(OP.ruleDelete, ruleIdOf(deleteRuleOfA()));
    event.data.padding = 'x'.repeat(20 * 1024 * 1024);
    const r = await cli(['handle-event', eventFile(event)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/larger than 1 MiB/);
    expect(sandbox.countRequests()).toBe(0);
  });

  test('a 10,000-event array on standard input (each event alone is fine)', async () => {
    const one = fleetEvent(OP.ruleWrite, ruleIdOf(pick(fleet, 'a').nsgIds[0]));
    const events = Array.from({ length: 10_000 }, () => ({ ...one, id: randomUUID() }));
    const r = await cli(['handle-event', '-'], { stdin: JSON.stringify(events) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/standard input is larger than 1 MiB/);
    expect(sandbox.countRequests()).toBe(0);
  });

  test('just under the limit is read and processed', async () => {
    const nsgId = deleteRuleOfA();
    const event = fleetEvent(OP.ruleDelete, ruleIdOf(nsgId));
    const base = Buffer.byteLength(JSON.stringify({ ...event, data: { ...event.data, padding: '' } }));
    event.data.padding = 'x'.repeat(1024 * 1024 - base);
    const file = eventFile(event);
    expect(fs.statSync(file).size).toBe(1024 * 1024);
    const r = await cli(['handle-event', file]);
    expect(r.code).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });
});

describe('a malformed AzureWebJobsStorage', () => {
  const KEY = 'c2VjcmV0LWFjY291bnQta2V5LW5vYm9keS1tYXktc2Vl';
  test.each([
    ['not a connection string', 'garbage'],
    ['no endpoint suffix, with a key', `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY}`],
    ['an endpoint that is not a URL, with a key', `TableEndpoint=not-a-url;QueueEndpoint=not-a-url;AccountName=acct;AccountKey=${KEY}`],
  ])('%s: exit 2 naming the setting, before any request, never echoing the value', async (_name, value) => {
    for (const args of [['sweep', '--subscription', fleet.subscriptionId, '--mode', 'report'], ['handle-event', eventFile(fleetEvent(OP.ruleWrite, ruleIdOf(pick(fleet, 'a').nsgIds[0])))]]) {
      const r = await cli(args, { env: { AzureWebJobsStorage: value } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^aks-netguard: AzureWebJobsStorage is not a usable Azure Storage connection string: /);
      expect(r.stderr).not.toMatch(/Cannot read properties/);
      expect(r.stderr + r.stdout).not.toContain(KEY);
      expect(r.stderr + r.stdout).not.toContain(value);
      expect(sandbox.countRequests()).toBe(0);
    }
  });
});

describe('serve', () => {
  let server: LocalServer;
  let logLines: string[];

  async function startServe(env: Record<string, string> = {}): Promise<void> {
    logLines = [];
    server = await startLocalServer({
      port: 0,
      runtime: runtimeFor(sandbox, { store: freshStore(rig.azuriteConnectionString), env }),
      log: (l) => logLines.push(l),
      messages: async () => async () => ({ status: 200, body: '{"reached":"the bot"}', headers: { 'content-type': 'application/json' } }),
    });
  }
  afterEach(async () => {
    await server?.close();
  });

  async function post(body: string | Uint8Array, headers: Record<string, string>, endpoint = '/api/events'): Promise<{ status: number; json: any }> {
    const res = await fetch(`${server.url}${endpoint}`, { method: 'POST', body, headers: { 'aeg-event-type': 'Notification', ...headers } });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  test('an event outside the scope: 200, logged as out of scope, zero ARM requests', async () => {
    await startServe({ AKS_NETGUARD_SUBSCRIPTIONS: OTHER_SUBSCRIPTION, AKS_NETGUARD_MODE: 'auto' });
    const nsgId = deleteRuleOfA();
    const r = await post(JSON.stringify([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)), fleetEvent(OP.clusterWrite, pick(fleet, 'e').clusterId)]), { 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(sandbox.countRequests()).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
    const lines = logLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(lines.map((l) => l.reason)).toEqual(['out-of-scope', 'out-of-scope']);
  });

  test('hostile resource ids: each event rejected (logged, not retried), zero ARM requests', async () => {
    await startServe();
    const events = hostileIds().map(([, operation, resourceId]) => fleetEvent(operation, resourceId));
    const r = await post(JSON.stringify(events), { 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(r.json.rejected).toHaveLength(events.length);
    expect(sandbox.countRequests()).toBe(0);
  });

  test('a request with an Origin header (a web page) is refused with 403 on every endpoint, before anything', async () => {
    await startServe();
    const nsgId = deleteRuleOfA();
    const body = JSON.stringify([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))]);
    const events = await post(body, { 'content-type': 'application/json', origin: 'https://evil.example' });
    expect(events.status).toBe(403);
    const messages = await post('{}', { 'content-type': 'application/json', origin: 'https://evil.example' }, '/api/messages');
    expect(messages.status).toBe(403);
    expect(messages.json).not.toEqual({ reached: 'the bot' });
    expect(sandbox.countRequests()).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
  });

  test('text/plain (what a page can send without a preflight) and untyped bodies: 415, nothing processed', async () => {
    await startServe();
    const nsgId = deleteRuleOfA();
    const body = JSON.stringify([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))]);
    expect((await post(body, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(body, { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await post(new TextEncoder().encode(body), {})).status).toBe(415);
    expect((await post('{}', { 'content-type': 'text/plain' }, '/api/messages')).status).toBe(415);
    expect(sandbox.countRequests()).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
    // The JSON types Event Grid sends are accepted.
    expect((await post(body, { 'content-type': 'application/cloudevents-batch+json; charset=utf-8' })).status).toBe(200);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('a 20 MB body gets a 413 answer (not a connection reset), declared or chunked; nothing processed', async () => {
    await startServe();
    const big = Buffer.alloc(20 * 1024 * 1024, 0x20);
    const declared = await post(big, { 'content-type': 'application/json' });
    expect(declared.status).toBe(413);
    expect(declared.json.error).toMatch(/larger than 1 MiB/);

    const chunks = Array.from({ length: 20 }, () => Buffer.alloc(1024 * 1024, 0x20));
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await fetch(`${server.url}/api/messages`, { method: 'POST', body: stream, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.text()).not.toContain('the bot');
    expect(sandbox.countRequests()).toBe(0);
  });
});

describe('secrets stay secret', () => {
  const BOT_PASSWORD = 'bot-password-7f3a9c1e-never-printed';
  const SANDBOX_TOKEN = 'netguard-sandbox-token';

  test('handle-event (repair, out of scope, malformed, oversized) and serve’s refusals print no key, password or token', async () => {
    const env = { MicrosoftAppId: '11111111-2222-3333-4444-555555555555', MicrosoftAppPassword: BOT_PASSWORD };
    const outputs: string[] = [];
    const nsgId = deleteRuleOfA();
    for (const run of [
      await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)))], { env }),
      await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))), '--json'], { env: { ...env, AKS_NETGUARD_SUBSCRIPTIONS: OTHER_SUBSCRIPTION } }),
      await cli(['handle-event', eventFile(fleetEvent(OP.nsgWrite, `${nsgId}?api-version=1`))], { env }),
      await cli(['handle-event', '-'], { env, stdin: 'x'.repeat(2 * 1024 * 1024) }),
      await cli(['sweep', '--subscription', fleet.subscriptionId, '--mode', 'report'], { env: { ...env, AzureWebJobsStorage: `${rig.azuriteConnectionString};Bogus=1` } }),
    ]) {
      outputs.push(run.stdout, run.stderr);
    }
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1); // the first run did work: its output was really produced

    const logLines: string[] = [];
    const server = await startLocalServer({ port: 0, runtime: runtimeFor(sandbox, { env }), log: (l) => logLines.push(l), messages: async () => undefined });
    try {
      const headerSets: Array<Record<string, string>> = [{ origin: 'https://evil.example' }, { 'content-type': 'text/plain' }, { 'content-type': 'application/json' }];
      for (const headers of headerSets) {
        const res = await fetch(`${server.url}/api/events`, { method: 'POST', body: JSON.stringify([fleetEvent(OP.nsgWrite, `${nsgId}#x`)]), headers });
        outputs.push(await res.text());
      }
    } finally {
      await server.close();
    }
    outputs.push(...logLines);

    const all = outputs.join('\n');
    const accountKey = /AccountKey=([^;]+)/.exec(rig.azuriteConnectionString)![1];
    expect(all).not.toContain(accountKey);
    expect(all).not.toContain(BOT_PASSWORD);
    expect(all).not.toContain(SANDBOX_TOKEN);
    expect(all).not.toMatch(/Bearer\s+\S/i);
  });
});

test('`aks-netguard serve` without MicrosoftAppId: the Emulator-style loopback bot works, a stranger’s serviceUrl is refused (403) and not stored', async () => {
  const { ConnectorStandIn } = await import('../teams/connectorStandIn');
  const { fixture } = await import('../teams/harness');
  const { TeamsTables } = await import('../../shared/teams/channels');
  const connector = await ConnectorStandIn.start();
  const served = await serveInProcess({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: rig.azuriteConnectionString });
  try {
    const url = served.url;
    const channel = `19:${randomUUID().replace(/-/g, '')}@thread.tacv2`;
    const activity = fixture('teams.net_message_channel_mention.json');
    activity.text = '<at>ridotest</at> subscribe';
    activity.conversation.id = `${channel};messageid=${activity.id}`;
    activity.channelData.channel.id = channel;
    const send = (serviceUrl: string) =>
      fetch(`${url}/api/messages`, { method: 'POST', body: JSON.stringify({ ...activity, serviceUrl }), headers: { 'content-type': 'application/json' } });

    const stranger = await send('https://smba.stranger.example/emea/');
    expect(stranger.status).toBe(403);
    const stored = () => TeamsTables.fromConnectionString(rig.azuriteConnectionString).listChannels();
    expect((await stored()).map((c) => c.channelId)).not.toContain(channel);

    const local = await send(connector.serviceUrl);
    expect(local.status).toBe(200);
    expect((await stored()).map((c) => c.channelId)).toContain(channel);
    expect(connector.posted()).toHaveLength(1);
  } finally {
    await served.stop().catch(() => undefined);
    await connector.stop();
  }
}, 60_000);

test('`aks-netguard serve` settles who may talk to the bot before building it: no storage still gives 403 / 401, not the configuration error', async () => {
  const outcomes: number[] = [];
  for (const env of [{}, { MicrosoftAppId: '11111111-2222-3333-4444-555555555555', MicrosoftAppPassword: 'bot-password-never-shown' }]) {
    const served = await serveInProcess({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...env });
    try {
      const url = served.url;
      const res = await fetch(`${url}/api/messages`, {
        method: 'POST',
        body: JSON.stringify({ type: 'message', text: 'subscribe', serviceUrl: 'https://smba.stranger.example/emea/', conversation: { id: 'c' } }),
        headers: { 'content-type': 'application/json' },
      });
      outcomes.push(res.status);
      expect(await res.text()).not.toMatch(/AzureWebJobsStorage|bot-password/);
    } finally {
      await served.stop().catch(() => undefined);
    }
  }
  expect(outcomes).toEqual([403, 401]);
}, 60_000);
