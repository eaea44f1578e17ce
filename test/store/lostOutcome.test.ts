// "Tell the truth about its own writes" across runs (DESIGN.md, Safety invariants). Azure applies
// NetGuard's rule write, its answer is lost, and storage goes down before the outcome (audit
// `remediated`, notice, flap record) is recorded: the run is retried, as "no write without a record"
// demands. Storage comes back (a real Azurite restarted on the same ports with its data kept), and
// the retry — Event Grid's redelivery to `serve`, or the next `aks-netguard sweep` — must report that
// fix as NetGuard's own: `remediated`, audited naming the intent of the write that made it, and not
// written a second time. Before, the redelivery was told to come back for 15 minutes (the claim it
// could not give back) and then, like the next sweep, called the target "compliant".
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { runCli } from '../../shared/cli/main';
import { startLocalServer } from '../../shared/cli/serve';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { TableStateStore } from '../../shared/store/tables';
import type { RunReport } from '../../shared/types';
import { startAzurite, type AzuriteInstance } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick, ruleIdOf, runtimeFor } from '../functions/eventRig';

let sandbox: ArmSandbox;
let azurite: AzuriteInstance;
let location: string;
let fleet: SeededFleet;

beforeEach(async () => {
  location = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-lost-outcome-'));
  [sandbox, azurite] = await Promise.all([startSandbox(), startAzurite({ location })]);
  fleet = seedDriftedFleet(sandbox, { subscriptionId: randomUUID() });
});

afterEach(async () => {
  await Promise.all([sandbox.stop(), azurite.stop()]);
  fs.rmSync(location, { recursive: true, force: true });
});

/**
 * The next PUT of the rule is applied but never answered (the try times out and is re-read); the
 * moment Azure applies it, Azurite is stopped. Returns a function that brings Azurite back on the
 * same ports with the rows written before (the intent among them).
 */
function loseTheOutcomeOf(rulePath: string): () => Promise<void> {
  sandbox.failNext({ method: 'PUT', pathPattern: new RegExp(`^${rulePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i'), fault: 'stall', afterApplying: true });
  let stopping: Promise<void> | undefined;
  const off = sandbox.onChange((change) => {
    if (change.resourceId.toLowerCase() !== rulePath.toLowerCase()) return;
    off();
    stopping = azurite.stop();
  });
  return async () => {
    await stopping;
    const port = (u: string) => Number(new URL(u).port);
    azurite = await startAzurite({ location, ports: { blob: port(azurite.blobEndpoint), queue: port(azurite.queueEndpoint), table: port(azurite.tableEndpoint) } });
  };
}

const rulePuts = () => sandbox.findRequests((r) => r.method === 'PUT' && /\/securityRules\//i.test(r.path)).length;

async function auditOf(targetId: string) {
  const audit = await TableStateStore.fromConnectionString(azurite.connectionString).listAudit();
  return audit.filter((a) => a.targetId.toLowerCase() === targetId.toLowerCase());
}

// A short per-try ARM timeout, so the stalled write is given up (and re-read) quickly.
const env = () => ({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: azurite.connectionString, AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '2' });

test('serve: the redelivery after storage is back answers 200 "remediated" for the fix whose records were lost, audited naming its intent', async () => {
  const a = pick(fleet, 'a');
  const nsgId = a.nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  const event = fleetEvent(OP.ruleDelete, ruleIdOf(nsgId));
  const restart = loseTheOutcomeOf(ruleIdOf(nsgId));
  const runtime = runtimeFor(sandbox, { env: env() });
  const server = await startLocalServer({ port: 0, runtime, log: () => undefined, messages: async () => undefined });
  try {
    const deliver = async () => {
      const res = await fetch(`${server.url}/api/events`, { method: 'POST', body: JSON.stringify([event]), headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' } });
      return { status: res.status, body: (await res.json().catch(() => undefined)) as { summary?: RunReport['summary'] } | undefined };
    };
    const first = await deliver();
    expect(first.status).toBe(500); // no outcome record: Event Grid must deliver it again
    await restart();
    const putsBefore = rulePuts();
    // Event Grid redelivers while NetGuard answers 500 (10 s, 30 s, 1 min, … apart; faster here).
    let answer = first;
    for (let attempt = 0; attempt < 30 && answer.status === 500; attempt++) {
      await new Promise((r) => setTimeout(r, 500));
      answer = await deliver();
    }
    expect(answer.status).toBe(200);
    expect(answer.body?.summary).toMatchObject({ remediated: 1 });
    expect(rulePuts()).toBe(putsBefore); // nothing written twice

    const rows = await auditOf(nsgId);
    const intent = rows.find((r) => r.event === 'intent');
    expect(intent?.intent).toBeTruthy();
    expect(rows.filter((r) => r.event === 'remediated').map((r) => r.intent)).toEqual([intent!.intent]);
  } finally {
    await server.close();
  }
}, 120_000);

test('sweep: the next sweep reports the fix whose records were lost as remediated (not compliant), audited naming its intent', async () => {
  const b = pick(fleet, 'b');
  const nsgId = b.nsgIds[0];
  const restart = loseTheOutcomeOf(ruleIdOf(nsgId));
  const sweep = async () => {
    let stdout = '';
    const code = await runCli(['sweep', '--json', '--mode', 'auto', '--subscription', fleet.subscriptionId], { stdout: (t) => (stdout += t), stderr: () => undefined, env: env() });
    return { code, report: stdout ? (JSON.parse(stdout) as RunReport) : undefined };
  };
  const first = await sweep();
  expect(first.code).toBe(1); // records lost: the run says so
  await restart();
  // The storage client pauses a few seconds after failing to connect; a sweep in that pause changes nothing and exits 1.
  let second = await sweep();
  for (let attempt = 0; attempt < 30 && second.code !== 0; attempt++) {
    await new Promise((r) => setTimeout(r, 500));
    second = await sweep();
  }
  expect(second.code).toBe(0);
  const finding = second.report?.findings.find((f) => f.control === 'node-ssh-deny' && f.targetId.toLowerCase() === nsgId.toLowerCase());
  expect(finding).toMatchObject({ status: 'drift', action: 'remediated' });
  const rows = await auditOf(nsgId);
  const intents = rows.filter((r) => r.event === 'intent').map((r) => r.intent);
  expect(intents).toHaveLength(1);
  expect(rows.filter((r) => r.event === 'remediated').map((r) => r.intent)).toEqual(intents);
}, 180_000);

test('handle-event: the redelivery of an event whose earlier delivery fixed and recorded the drift but answered "retry" answers remediated again, announcing nothing twice', async () => {
  const b = pick(fleet, 'b');
  const nsgId = b.nsgIds[0];
  const event = fleetEvent(OP.nsgWrite, nsgId);
  const handle = async () => {
    let stdout = '';
    const code = await runCli(['handle-event', '-', '--json'], { stdout: (t) => (stdout += t), stderr: () => undefined, env: env(), readStdin: async () => JSON.stringify([event]) });
    return { code, report: JSON.parse(stdout) as RunReport };
  };
  const first = await handle();
  expect(first.code).toBe(0);
  expect(first.report.summary.remediated).toBe(1);
  // What a delivery answered with a retry leaves behind (a concurrent run's storage failure makes the
  // whole delivery retried, though this fix's own rows were all stored): its claim given back.
  const { TableClient } = await import('@azure/data-tables');
  const { tableKey } = await import('../../shared/store/tables');
  await TableClient.fromConnectionString(azurite.connectionString, 'netguardevents', { allowInsecureConnection: true }).deleteEntity('event', tableKey(event.id as string));
  const putsBefore = rulePuts();

  const again = await handle();
  expect(again.code).toBe(0);
  expect(again.report.findings.find((f) => f.control === 'node-ssh-deny' && f.targetId.toLowerCase() === nsgId.toLowerCase())).toMatchObject({ action: 'remediated' });
  expect(rulePuts()).toBe(putsBefore);
  expect((await auditOf(nsgId)).filter((r) => r.event === 'remediated')).toHaveLength(1);
  const { QueueClient } = await import('@azure/storage-queue');
  const queue = new QueueClient(azurite.connectionString, 'netguard-notices', { allowInsecureConnection: true } as object);
  const notices = (await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) => String(m.messageText));
  expect(notices.filter((t) => /remediated/.test(t.startsWith('{') ? t : Buffer.from(t, 'base64').toString('utf8')))).toHaveLength(1);
}, 120_000);
