// Every metric docs/operate.md documents reaches the exporter with the documented name, unit and
// dimensions, recorded by the registered functions themselves: the functions are registered through
// the real @azure/functions into a stand-in of the worker's own module (@azure/functions-core, which
// only exists inside the Functions worker) and invoked as the worker invokes them, against the ARM
// sandbox and Azurite, with an in-memory OpenTelemetry metrics SDK.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { NOTICE_QUEUE } from '../../shared/notify/queueSink';
import { resetFunctionRuntime } from '../../shared/runtime';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import { storeFromEnvironment } from '../../shared/store/tables';
import { METRIC_NAMES } from '../../shared/telemetry';
import { createTeamsHost } from '../../shared/teams/host';
import { teamsMessages } from '../../functions/teamsMessages';
import { instrumented } from '../../shared/functionTelemetry';
import { useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick, ruleIdOf, seedFleet } from '../functions/eventRig';
import { drainQueue } from '../sweep/queueHost';
import { ConnectorStandIn } from '../teams/connectorStandIn';
import { APPROVER, cardClick, channelMessage, TENANT, type Harness } from '../teams/harness';

type Handler = (trigger: unknown, context: InvocationContext) => Promise<unknown>;
// The worker's module: what @azure/functions registers with when it runs inside the worker. The
// factory keeps the handlers itself (it can run before this file's own constants, while imports load).
jest.mock(
  '@azure/functions-core',
  () => {
    const registered = new Map<string, unknown>();
    return {
      registered,
      setProgrammingModel: () => undefined,
      registerFunction: (metadata: { name: string }, handler: unknown) => {
        registered.set(metadata.name, handler);
        return { dispose: () => undefined };
      },
      log: () => undefined,
    };
  },
  { virtual: true },
);
const mockRegistered = (jest.requireMock('@azure/functions-core') as { registered: Map<string, Handler> }).registered;

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

jest.setTimeout(60_000);
const azurite = useAzurite();
const reader = new CollectingReader();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let connector: ConnectorStandIn;
const savedEnv = { ...process.env };

beforeAll(async () => {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
  connector = await ConnectorStandIn.start();
  // As in Azure, minus the bot's credentials (the connector stand-in takes unauthenticated calls).
  Object.assign(process.env, {
    AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId,
    AKS_NETGUARD_APPROVERS: APPROVER,
    MicrosoftAppTenantId: TENANT,
    AzureWebJobsStorage: azurite.connectionString,
  });
  resetFunctionRuntime();
  // Loading the function modules registers them, as the worker's startup does.
  for (const name of ['dailySweep', 'deliverNotices', 'onResourceEvent', 'sweepSubscription', 'teamsMessages', 'verifyClusterUpdates']) {
    // By name, as the worker loads what package.json `main` matches.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(`../../functions/${name}`);
  }
});

afterAll(async () => {
  metrics.disable();
  resetFunctionRuntime();
  process.env = savedEnv;
  await sandbox?.stop();
  await connector?.stop();
});

interface Point {
  name: string;
  unit: string;
  attributes: Record<string, unknown>;
  value: unknown;
}

async function points(): Promise<Point[]> {
  const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
  return resourceMetrics.scopeMetrics.flatMap((s) =>
    s.metrics.flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, unit: m.descriptor.unit, attributes: p.attributes, value: p.value }))),
  );
}

/** The metric rows of docs/operate.md's table: name, unit, dimensions. */
function documentedMetrics(): Array<{ name: string; unit: string; dimensions: string[] }> {
  const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'operate.md'), 'utf8');
  return [...doc.matchAll(/^\| metric `([^`]+)` \| `([^`]*)` \| ([^|]*) \|/gm)].map((m) => ({
    name: m[1],
    unit: m[2],
    dimensions: [...m[3].matchAll(/`([^`]+)`/g)].map((d) => d[1]),
  }));
}

const context = (functionName: string) => new InvocationContext({ functionName, logHandler: () => undefined });

test('operate.md documents exactly the metrics NetGuard defines', () => {
  expect(documentedMetrics().map((m) => m.name).sort()).toEqual(Object.values(METRIC_NAMES).sort());
});

test('all six functions are registered with the worker', () => {
  expect([...mockRegistered.keys()].sort()).toEqual(['dailySweep', 'deliverNotices', 'onResourceEvent', 'sweepSubscription', 'teamsMessages', 'verifyClusterUpdates']);
});

test('the registered functions emit every documented metric with its documented name, unit and dimensions', async () => {
  // A drift NetGuard fixes by itself (its SSH rule deleted), and one that needs a person (a cluster write).
  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  await mockRegistered.get('onResourceEvent')!(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)), context('onResourceEvent'));
  for (const c of fleet.clusters) await mockRegistered.get('onResourceEvent')!(fleetEvent(OP.clusterWrite, c.clusterId), context('onResourceEvent'));
  const pending = (await storeFromEnvironment(process.env)!.listApprovals('pending')).length;
  expect(pending).toBeGreaterThan(0);

  // The Teams path, all through the registered functions: a channel subscribes, deliverNotices posts the
  // queued approval cards (driven from the real queue as the host drives it), an approver clicks Approve.
  const teams = { connector } as unknown as Harness; // the activity builders only need the connector's URL
  // The deployed /api/messages answers 401 without a Bot Framework token (which needs Microsoft's
  // token service): the activities go to the same handler with the bot `serve` runs on loopback, built
  // from the same settings, engine and storage.
  const host = createTeamsHost(process.env, undefined, false, true);
  const messages = instrumented((request: HttpRequest, ctx: InvocationContext) => teamsMessages(request, ctx, (r) => host.bot.process(r)), { countApprovals: true });
  const teamsRequest = async (activity: Record<string, unknown>) => {
    const request = new HttpRequest({ method: 'POST', url: 'http://localhost/api/messages', headers: { 'content-type': 'application/json' }, body: { string: JSON.stringify(activity) } });
    return (await messages(request, context('teamsMessages'))) as { status?: number };
  };
  const channel = '19:metrics0000000000000000000000001@thread.tacv2';
  await teamsRequest(channelMessage(teams, 'subscribe', channel));
  const insecure = { allowInsecureConnection: true } as object;
  const delivered = await drainQueue(
    new QueueClient(azurite.connectionString, NOTICE_QUEUE, insecure),
    new QueueClient(azurite.connectionString, `${NOTICE_QUEUE}-poison`, insecure),
    (message, ctx) => mockRegistered.get('deliverNotices')!(message, ctx),
    { maxDequeueCount: 5 },
  );
  expect(delivered.length).toBeGreaterThan(0);
  expect(delivered.every((d) => d.ok)).toBe(true);
  const posted = connector.posted();
  const index = posted.findIndex((c) => JSON.stringify(c.body).includes('"action":"approve"'));
  expect(index).toBeGreaterThanOrEqual(0);
  const card = posted[index].body.attachments[0].content;
  const actions = card.body.filter((e: { type: string }) => e.type === 'ActionSet').flatMap((e: { actions: unknown[] }) => e.actions) as Array<{ verb?: string; data?: { action: string } }>;
  const approve = actions.find((b) => b.data?.action === 'approve') as { verb: string; data: { action: string } };
  const clicked = await teamsRequest(cardClick(teams, { replyToId: `1:${index + 1}`, conversationId: posted[index].conversationId, verb: approve.verb, data: approve.data }));
  expect(clicked.status).toBe(200);
  const stillPending = (await storeFromEnvironment(process.env)!.listApprovals('pending')).length;
  expect(stillPending).toBe(pending - 1);

  const seen = await points();
  for (const doc of documentedMetrics()) {
    const mine = seen.filter((p) => p.name === doc.name);
    expect({ name: doc.name, emitted: mine.length > 0 }).toEqual({ name: doc.name, emitted: true });
    for (const p of mine) {
      expect({ name: doc.name, unit: p.unit, dimensions: Object.keys(p.attributes).sort() }).toEqual({ name: doc.name, unit: doc.unit, dimensions: [...doc.dimensions].sort() });
    }
  }
  expect(seen.find((p) => p.name === METRIC_NAMES.remediated)?.attributes).toEqual({ 'netguard.control': 'node-ssh-deny' });
  // The gauge holds the count after the decision (the last Teams request).
  expect(seen.find((p) => p.name === METRIC_NAMES.approvalsWaiting)?.value).toBe(stillPending);
  expect(seen.find((p) => p.name === METRIC_NAMES.timeToApproval)?.attributes).toMatchObject({ 'netguard.decision': 'approved' });
});
