// Red team, as a new user following README "Run it on your laptop" → `serve` with Azurite and the Bot
// Framework Emulator (docs/teams.md: "`aks-netguard serve` ... runs the bot without authentication, for
// the Bot Framework Emulator"). The activities are shaped as the Emulator sends them (channelId
// "emulator", a localhost serviceUrl, a user with an id and a name but no Entra object id); the
// Emulator's connector is the loopback stand-in. Everything runs as child processes: `serve` and
// `sweep`, sharing Azurite.
import { execFile } from 'node:child_process';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { ConnectorStandIn, type ConnectorCall } from '../teams/connectorStandIn';
import { BIN, postJson, ROOT, startServe, waitFor, type Served } from '../helpers/serveRig';

// The Emulator's own user id (Settings → "User ID"); the Emulator sends no aadObjectId.
const EMULATOR_USER = 'c5e99701-2a32-49c1-a660-4629ceeb8c61';
const CONVERSATION = 'a1b2c3d4-0000-4000-8000-000000000001|livechat';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let connector: ConnectorStandIn;
let serve: Served | undefined;

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
  return postJson(`${serve!.url}/api/messages`, activity);
}

const cardOf = (c: ConnectorCall) => c.body.attachments?.[0]?.content as { body: any[] } | undefined;

test('the Emulator user set in AKS_NETGUARD_APPROVERS can approve a card from a local sweep, as README says ("a click on one applies the fix")', async () => {
  serve = await startServe(env());
  const subscribed = await post(emulatorActivity({ type: 'message', text: 'subscribe' }));
  expect(subscribed.status).toBe(200);
  expect(JSON.stringify(connector.calls.map((c) => c.body.text))).toMatch(/[Ss]ubscribed/);

  expect(await sweep()).toBe(0);
  const e = fleet.clusters.find((c) => c.label === 'e')!;
  const card = await waitFor(serve, 'the approval card', () =>
    connector.posted().find((c) => /Approval needed/.test(JSON.stringify(cardOf(c)?.body?.[0] ?? '')) && JSON.stringify(cardOf(c)).includes(e.clusterId.split('/').pop()!)),
  );
  const approve = (cardOf(card)!.body.find((b) => b.type === 'ActionSet').actions as Array<{ verb: string; data: { action: string } }>).find((a) => a.data.action === 'approve')!;

  const clicked = await post(emulatorActivity({ type: 'invoke', name: 'adaptiveCard/action', replyToId: '1:2', value: { action: { type: 'Action.Execute', verb: approve.verb, data: approve.data }, trigger: 'manual' } }));
  expect(clicked.status).toBe(200);
  expect(clicked.text).not.toMatch(/not in AKS_NETGUARD_APPROVERS/);
  expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
}, 180_000);
