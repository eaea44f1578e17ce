// `aks-netguard serve` is the Function App on loopback. Driven only from outside, as a new user would:
// Azurite, the ARM sandbox with a drifted fleet, a local Bot Framework connector, then the real CLI as
// child processes — `serve` (the bot installed in a channel through /api/messages) and `sweep` with the
// same storage. The sweep's approval card must reach the channel through serve's own queue functions;
// an approver's click applies the fix in the sandbox and the fix notice follows. The timer runs on
// demand through the admin endpoint and its digest reaches the channel too.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import type { ApprovalActionData } from '../../shared/teams/cards';
import { useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { ConnectorStandIn, type ConnectorCall } from '../teams/connectorStandIn';
import { BIN, ROOT, startServe, waitFor, type Served } from '../helpers/serveRig';

// Entra object ids and the tenant of Microsoft's published Teams samples (test/fixtures/teams).
const APPROVER = 'c5e99701-2a32-49c1-a660-4629ceeb8c61';
const NOT_AN_APPROVER = 'eddfa9d4-346e-4cce-a18f-fa6261ad776b';
const TENANT = 'b28fdbfd-2b78-4f93-b0f8-8881793f0f8f';
const fixture = (name: string): Record<string, any> => JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'teams', name), 'utf8'));

const CHANNEL = '19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let connector: ConnectorStandIn;
let serve: Served;

beforeAll(() => {
  // serve loads the compiled functions (dist/functions), as the Functions worker does.
  if (!existsSync(path.join(ROOT, 'dist', 'shared', 'cli', 'localHost.js'))) {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  }
}, 180_000);

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
  connector = await ConnectorStandIn.start();
  serve = await startServe(env());
});

afterEach(async () => {
  await serve?.stop();
  await connector?.stop();
  await sandbox?.stop();
});

function env(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    AzureWebJobsStorage: azurite.connectionString,
    AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId,
    AKS_NETGUARD_APPROVERS: APPROVER,
    AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24',
  };
}

function runCli(args: string[], environment: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: environment }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}


async function postActivity(activity: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${serve.url}/api/messages`, { method: 'POST', body: JSON.stringify(activity), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The published "bot added to a team" conversationUpdate, pointed at the local connector. */
function installInChannel(): Record<string, any> {
  const a = fixture('msteams-docs_conversationUpdate_teamMemberAdded_bot-added-to-team.json');
  a.serviceUrl = connector.serviceUrl;
  a.conversation.id = CHANNEL;
  return a;
}

/** A click on a card in the channel, shaped like the published adaptiveCard/action invoke. */
function click(replyToId: string, conversationId: string, action: { title: string; verb: string; data: unknown }, from: string): Record<string, any> {
  const a = fixture('teams.net_invoke_adaptiveCard-action_personal.json');
  a.serviceUrl = connector.serviceUrl;
  a.conversation = { id: conversationId, conversationType: 'channel', isGroup: true, tenantId: TENANT };
  a.channelData.tenant.id = TENANT;
  a.channelData.legacy.replyToId = replyToId;
  a.replyToId = replyToId;
  a.from.aadObjectId = from;
  a.value = { action: { type: 'Action.Execute', ...action }, trigger: 'manual' };
  return a;
}

const cardOf = (call: ConnectorCall) => call.body.attachments?.[0]?.content as { body: any[] } | undefined;
const factsOf = (call: ConnectorCall): Record<string, string> =>
  Object.fromEntries((cardOf(call)?.body ?? []).filter((e) => e.type === 'FactSet').flatMap((e) => e.facts.map((f: any) => [f.title, f.value])));
const titleOf = (call: ConnectorCall): string => JSON.stringify(cardOf(call)?.body?.[0] ?? '');
/** The id the connector gave a posted activity (it numbers its successful POSTs 1:1, 1:2, …). */
const activityIdOf = (call: ConnectorCall) => `1:${connector.posted().indexOf(call) + 1}`;

test('a local sweep\'s approval card reaches the channel through serve; an approver\'s click fixes the cluster and the fix notice follows', async () => {
  const e = fleet.clusters.find((c) => c.label === 'e')!; // HTTP application routing on; approve mode
  const clusterName = e.clusterId.split('/').pop()!;

  const installed = await postActivity(installInChannel());
  expect(installed.status).toBe(200);
  expect(JSON.stringify(connector.posted().map((c) => c.body.text))).toMatch(/will post approval requests/);

  const sweep = await runCli(['sweep', '--json'], env());
  expect(sweep.code).toBe(0);
  expect(JSON.parse(sweep.stdout).findings).toEqual(
    expect.arrayContaining([expect.objectContaining({ control: 'http-application-routing', resourceId: e.clusterId, action: 'approval-requested' })]),
  );

  // Nothing but serve takes the card off the notice queue and posts it.
  const approvalCard = await waitFor(serve, 'the approval card', () =>
    connector.posted().find((c) => c.conversationId === CHANNEL && /Approval needed/.test(titleOf(c)) && factsOf(c).Control === 'http-application-routing' && factsOf(c).Cluster === clusterName),
  );
  expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);
  const buttons = cardOf(approvalCard)!.body.find((b) => b.type === 'ActionSet').actions as Array<{ title: string; verb: string; data: ApprovalActionData }>;
  const approve = buttons.find((b) => b.data.action === 'approve')!;

  // Someone not in AKS_NETGUARD_APPROVERS is refused and nothing is written.
  const refused = await postActivity(click(activityIdOf(approvalCard), approvalCard.conversationId, approve, NOT_AN_APPROVER));
  expect(refused.status).toBe(200);
  expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);

  const approved = await postActivity(click(activityIdOf(approvalCard), approvalCard.conversationId, approve, APPROVER));
  expect(approved.status).toBe(200);
  expect(JSON.stringify(approved.body.value)).toMatch(/Approved by .*: done/);
  expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);

  const notice = await waitFor(serve, 'the fix notice', () =>
    connector.posted().find((c) => c.conversationId === CHANNEL && /fixed drift/.test(titleOf(c)) && /http-application-routing/.test(titleOf(c)) && factsOf(c).Cluster === clusterName),
  );
  expect(JSON.stringify(cardOf(notice))).toMatch(/httpApplicationRouting\.enabled: true → false/);

  // Ctrl-C: every poll loop and the server stop, and the process ends by itself.
  expect(await serve.stop()).toBe(0);
  expect(serve.output()).toMatch(/Stopped\./);
}, 180_000);

test('the timer on demand: POST /admin/functions/dailySweep fans out through serve\'s sweep queue and the digest reaches the channel', async () => {
  expect((await postActivity(installInChannel())).status).toBe(200);
  const res = await fetch(`${serve.url}/admin/functions/dailySweep`, { method: 'POST', body: JSON.stringify({ input: '' }), headers: { 'content-type': 'application/json' } });
  expect(res.status).toBe(202);
  const digest = await waitFor(serve, 'the digest', () => connector.posted().find((c) => c.conversationId === CHANNEL && /daily digest/.test(titleOf(c))));
  expect(JSON.stringify(cardOf(digest))).toContain(String(fleet.clusters.length));
  expect(sandbox.countRequests({ method: 'GET', path: new RegExp(`^/subscriptions/${fleet.subscriptionId}/providers/Microsoft\\.ContainerService/managedClusters$`, 'i') })).toBeGreaterThan(0);

  const unknown = await fetch(`${serve.url}/admin/functions/nothing`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  expect(unknown.status).toBe(404);
  expect(await serve.stop()).toBe(0);
}, 180_000);
