// Red team: who "caused the drift" comes from the event's claims (the caller's display name), which the
// caller controls — a guest user's name is set in their home tenant, an app registration's by whoever
// registers it. On a card in the on-call channel it must read as text, never as a link: a name like
// "[Approve the fix](https://evil.example/login)" must not become a clickable "Approve the fix" that
// hides where it goes. Driven as a user runs it: `serve` with Azurite, a channel subscribed through
// /api/messages (loopback connector), the event POSTed to /api/events, the card read off the connector.
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import { AZURITE_ACCOUNT_KEY, useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick, ruleIdOf, seedFleet } from '../functions/eventRig';
import { ConnectorStandIn, type ConnectorCall } from '../teams/connectorStandIn';
import { postJson, startServe, waitFor, type Served } from '../helpers/serveRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let connector: ConnectorStandIn;
let serve: Served | undefined;

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
  connector = await ConnectorStandIn.start();
});

afterEach(async () => {
  await serve?.stop();
  serve = undefined;
  await connector?.stop();
  await sandbox?.stop();
});

const cardOf = (c: ConnectorCall) => c.body.attachments?.[0]?.content as { body: any[] } | undefined;
const factsOf = (c: ConnectorCall): Record<string, string> =>
  Object.fromEntries((cardOf(c)?.body ?? []).filter((e) => e.type === 'FactSet').flatMap((e) => e.facts.map((f: any) => [f.title, f.value])));
/** A Markdown link whose brackets are not escaped: what Teams renders as clickable text. */
const MARKDOWN_LINK = /(^|[^\\])\[[^\]]*[^\\]\]\(\s*https?:/;

test('a caller name holding a Markdown link is shown as text on the fix notice, not as a link', async () => {
  serve = await startServe({
    PATH: process.env.PATH ?? '',
    AzureWebJobsStorage: azurite.connectionString,
    AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId,
  });
  const subscribed = await postJson(`${serve.url}/api/messages`, {
    type: 'message',
    text: 'subscribe',
    channelId: 'emulator',
    serviceUrl: connector.serviceUrl,
    conversation: { id: 'oncall-conversation' },
    from: { id: 'operator', name: 'Operator' },
    recipient: { id: 'netguard-bot', name: 'Bot' },
    id: 'act-1',
  });
  expect(subscribed.status).toBe(200);

  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  const hostileName = '[Approve the fix](https://evil.example/login)';
  const delivered = await postJson(`${serve.url}/api/events`, [fleetEvent(OP.ruleDelete, ruleIdOf(nsgId), { caller: { name: hostileName } })]);
  expect(delivered.status).toBe(200);

  const notice = await waitFor(serve, 'the fix notice', () => connector.posted().find((c) => /fixed drift/.test(JSON.stringify(cardOf(c)?.body?.[0] ?? ''))));
  const causedBy = factsOf(notice)['Drift caused by'];
  expect(causedBy).toContain('Approve the fix');
  expect(causedBy).not.toMatch(MARKDOWN_LINK);
  expect(JSON.stringify(cardOf(notice))).not.toMatch(/[^\\]\]\(https:\/\/evil\.example/);
  // Secrets stay secret: serve's own output never holds the storage key.
  expect(serve.output()).not.toContain(AZURITE_ACCOUNT_KEY);
}, 120_000);

test('a drift that keeps coming back names who keeps changing it on the approval card — as text, not as a link', async () => {
  serve = await startServe({
    PATH: process.env.PATH ?? '',
    AzureWebJobsStorage: azurite.connectionString,
    AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId,
    // After one automatic fix, the next return of the drift goes to a person (README: flap guard).
    AKS_NETGUARD_FLAP_COUNT: '1',
  });
  const subscribed = await postJson(`${serve.url}/api/messages`, {
    type: 'message',
    text: 'subscribe',
    channelId: 'emulator',
    serviceUrl: connector.serviceUrl,
    conversation: { id: 'oncall-conversation-2' },
    from: { id: 'operator', name: 'Operator' },
    recipient: { id: 'netguard-bot', name: 'Bot' },
    id: 'act-2',
  });
  expect(subscribed.status).toBe(200);

  const nsgId = pick(fleet, 'a').nsgIds[0];
  const hostileName = '[Approve the fix](https://evil.example/login)';
  for (let i = 0; i < 2; i++) {
    expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
    const delivered = await postJson(`${serve.url}/api/events`, [fleetEvent(OP.ruleDelete, ruleIdOf(nsgId), { caller: { name: hostileName } })]);
    expect(delivered.status).toBe(200);
  }

  const card = await waitFor(serve, 'the approval card', () => connector.posted().find((c) => /Approval needed/.test(JSON.stringify(cardOf(c)?.body?.[0] ?? ''))));
  const text = JSON.stringify(cardOf(card));
  expect(text).toContain('Approve the fix');
  expect(text).not.toMatch(/[^\\]\]\(https:\/\/evil\.example/);
}, 120_000);
