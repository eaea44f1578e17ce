// Red team, as a new user following README "Run it on your laptop" → `serve` with Azurite and the Bot
// Framework Emulator (docs/teams.md: "`aks-netguard serve` ... runs the bot without authentication, for
// the Bot Framework Emulator"). The activities are shaped as the Emulator sends them (channelId
// "emulator", a localhost serviceUrl, a user with an id and a name but no Entra object id); the
// Emulator's connector is the loopback stand-in. Everything runs as child processes: `serve` and
// `sweep`, sharing Azurite.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../shared/sandbox/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../shared/sandbox/fleet';
import { useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { ConnectorStandIn, type ConnectorCall } from '../teams/connectorStandIn';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'aks-netguard.js');
// The Emulator's own user id (Settings → "User ID"); the Emulator sends no aadObjectId.
const EMULATOR_USER = 'c5e99701-2a32-49c1-a660-4629ceeb8c61';
const CONVERSATION = 'a1b2c3d4-0000-4000-8000-000000000001|livechat';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let connector: ConnectorStandIn;
let serve: { url: string; output: () => string; stop: () => Promise<number | null> } | undefined;

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox, { subscriptionId: 'a1b2c3d4-0000-4000-8000-0000000000e1' });
  connector = await ConnectorStandIn.start();
});

afterEach(async () => {
  await serve?.stop();
  serve = undefined;
  await connector?.stop();
  await sandbox?.stop();
});

function env(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    AzureWebJobsStorage: azurite.connectionString,
    AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId,
    // The new user puts the only id the Emulator lets them set.
    AKS_NETGUARD_APPROVERS: EMULATOR_USER,
  };
}

function startServe(): Promise<NonNullable<typeof serve>> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { cwd: ROOT, env: env() });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopped: Promise<number | null> | undefined;
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (url) resolve({ url, output: () => out, stop: () => (stopped ??= (child.exitCode === null && child.kill('SIGINT'), exited)) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${out}`)));
  });
}

function sweep(): Promise<number> {
  return new Promise((resolve) => execFile(process.execPath, [BIN, 'sweep', '--json'], { cwd: ROOT, env: env() }, (err) => resolve(err ? Number(err.code ?? 1) : 0)));
}

function emulatorActivity(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    channelId: 'emulator',
    serviceUrl: connector.serviceUrl.replace('127.0.0.1', 'localhost'),
    conversation: { id: CONVERSATION },
    from: { id: EMULATOR_USER, name: 'User', role: 'user' },
    recipient: { id: 'netguard-bot', name: 'Bot', role: 'bot' },
    id: `act-${Math.random().toString(36).slice(2)}`,
    timestamp: new Date().toISOString(),
    locale: 'en-US',
    ...extra,
  };
}

async function post(activity: Record<string, unknown>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${serve!.url}/api/messages`, { method: 'POST', body: JSON.stringify(activity), headers: { 'content-type': 'application/json' } });
  return { status: res.status, text: await res.text() };
}

async function waitFor<T>(what: string, find: () => T | undefined): Promise<T> {
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (/Stopped\.|aks-netguard: /.test(serve!.output())) throw new Error(`serve stopped while waiting for ${what}:\n${serve!.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cardOf = (c: ConnectorCall) => c.body.attachments?.[0]?.content as { body: any[] } | undefined;

test.failing('the Emulator user set in AKS_NETGUARD_APPROVERS can approve a card from a local sweep, as README says ("a click on one applies the fix")', async () => {
  serve = await startServe();
  const subscribed = await post(emulatorActivity({ type: 'message', text: 'subscribe' }));
  expect(subscribed.status).toBe(200);
  expect(JSON.stringify(connector.calls.map((c) => c.body.text))).toMatch(/[Ss]ubscribed/);

  expect(await sweep()).toBe(0);
  const e = fleet.clusters.find((c) => c.label === 'e')!;
  const card = await waitFor('the approval card', () =>
    connector.posted().find((c) => /Approval needed/.test(JSON.stringify(cardOf(c)?.body?.[0] ?? '')) && JSON.stringify(cardOf(c)).includes(e.clusterId.split('/').pop()!)),
  );
  const approve = (cardOf(card)!.body.find((b) => b.type === 'ActionSet').actions as Array<{ verb: string; data: { action: string } }>).find((a) => a.data.action === 'approve')!;

  const clicked = await post(emulatorActivity({ type: 'invoke', name: 'adaptiveCard/action', replyToId: '1:2', value: { action: { type: 'Action.Execute', verb: approve.verb, data: approve.data }, trigger: 'manual' } }));
  expect(clicked.status).toBe(200);
  expect(clicked.text).not.toMatch(/not in AKS_NETGUARD_APPROVERS/);
  expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
}, 180_000);
