// Storage outages: "No write without a record" (DESIGN.md, Safety invariants). A real Azurite is
// crashed (SIGKILL: it answers nothing after that) at the moment the ARM sandbox applies NetGuard's
// first write, and the run is judged the way a user sees it: the ARM writes the sandbox received,
// the CLI's exit status and JSON, the HTTP status of `serve`, whether the Event Grid function throws.
// Azurite runs in memory, so the rows written before the crash are gone with it; what is asserted is
// that nothing was written to Azure after storage went away, and (with storage up) that every ARM
// write has its intent row.
import { InvocationContext } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { onResourceEvent } from '../../functions/onResourceEvent';
import { runCli } from '../../shared/cli/main';
import { startLocalServer } from '../../shared/cli/serve';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { TableStateStore } from '../../shared/store/tables';
import type { Finding, RunReport } from '../../shared/types';
import { startAzurite, type AzuriteInstance } from '../helpers/azurite';
import { engineFor, freshStore, isWrite, startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick, ruleIdOf, rulePutsThatTook, runtimeFor } from '../functions/eventRig';

let sandbox: ArmSandbox;
let azurite: AzuriteInstance;
let fleet: SeededFleet;

beforeEach(async () => {
  [sandbox, azurite] = await Promise.all([startSandbox(), startAzurite()]);
  fleet = seedDriftedFleet(sandbox, { subscriptionId: randomUUID() });
});

afterEach(async () => {
  await Promise.all([sandbox.stop(), azurite.stop()]);
});

/** Crashes Azurite when the sandbox applies the first write; returns how many writes it had received then. */
function crashStorageAtFirstWrite(): { writesAtCrash: () => number } {
  let atCrash = -1;
  const off = sandbox.onChange(() => {
    off();
    atCrash = sandbox.findRequests(isWrite).length;
    void azurite.kill();
  });
  return { writesAtCrash: () => atCrash };
}

async function cli(argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
  return { code, stdout, stderr };
}

const sweepEnv = () => ({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: azurite.connectionString });
const notFixedForStorage = (f: Finding) => f.status === 'error' && /storage/i.test(f.detail);

describe('sweep through the CLI', () => {
  test('storage up: every ARM write has an intent row, and each outcome row names the intent it completes', async () => {
    const run = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId], sweepEnv());
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport;
    const writes = sandbox.findRequests((r) => isWrite(r) && r.status >= 200 && r.status < 300);
    expect(report.summary.remediated).toBeGreaterThan(1);
    expect(writes.length).toBeGreaterThanOrEqual(report.summary.remediated);

    const audit = await TableStateStore.fromConnectionString(azurite.connectionString).listAudit();
    const intents = audit.filter((a) => a.event === 'intent');
    expect(intents).toHaveLength(writes.length);
    for (const intent of intents) {
      expect(intent.intent).toBeTruthy();
      expect(intent.after).toBeDefined();
      expect(intent.actor).toBeTruthy();
      expect(intent.runId).toBeTruthy();
    }
    const remediated = audit.filter((a) => a.event === 'remediated');
    expect(remediated).toHaveLength(report.summary.remediated);
    const intentIds = new Set(intents.map((i) => i.intent));
    for (const row of remediated) for (const id of row.intent!.split(',')) expect(intentIds).toContain(id);
  }, 60_000);

  test('Azurite crashes right after the first ARM write: no further write, the other fixes are errors naming storage, exit 1', async () => {
    const crash = crashStorageAtFirstWrite();
    const run = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId], sweepEnv());

    expect(crash.writesAtCrash()).toBe(1);
    // Nothing reached Azure after storage went away: the next intent could not be written.
    expect(sandbox.findRequests(isWrite)).toHaveLength(1);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/storage/i);
    const report = JSON.parse(run.stdout) as RunReport;
    // The fleet has several drifts that the default modes fix at once; all but the first were refused.
    expect(report.findings.filter(notFixedForStorage).length).toBeGreaterThanOrEqual(1);
    expect(report.summary.remediated).toBeLessThanOrEqual(1);
  }, 120_000);

  test('storage down from the start: no ARM write at all, exit 1', async () => {
    await azurite.kill();
    const run = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId], sweepEnv());
    expect(sandbox.findRequests(isWrite)).toHaveLength(0);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report.summary.remediated).toBe(0);
    expect(report.findings.filter(notFixedForStorage).length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});

test('each intent is stored before its write: the n-th intent row is written when Azure has received n-1 writes', async () => {
  const store = freshStore(azurite.connectionString);
  const writesWhenIntentStored: number[] = [];
  const audit = store.audit.bind(store);
  // Observes the real store (no SDK is replaced): how many ARM writes had happened when each intent was stored.
  store.audit = async (entry) => {
    const writesSoFar = sandbox.findRequests(isWrite).length;
    await audit(entry);
    if (entry.event === 'intent') writesWhenIntentStored.push(writesSoFar);
  };
  const { engine } = engineFor(sandbox, { store });
  const report = await engine.sweep([fleet.subscriptionId], { cliMode: 'auto' });
  const writes = sandbox.findRequests(isWrite);
  expect(report.summary.remediated).toBeGreaterThan(2);
  expect(writesWhenIntentStored).toEqual(writes.map((_, i) => i));
}, 60_000);

describe('an event whose records are lost', () => {
  function ruleDeleteOfA(): { nsgId: string; event: Record<string, any> } {
    const nsgId = pick(fleet, 'a').nsgIds[0];
    expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
    return { nsgId, event: fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)) };
  }

  test('serve answers 500 (Event Grid redelivers), not 200 "remediated"', async () => {
    const { nsgId, event } = ruleDeleteOfA();
    const runtime = runtimeFor(sandbox, { env: { AzureWebJobsStorage: azurite.connectionString } });
    const server = await startLocalServer({ port: 0, runtime, log: () => undefined, messages: async () => undefined });
    try {
      crashStorageAtFirstWrite();
      const res = await fetch(`${server.url}/api/events`, {
        method: 'POST',
        body: JSON.stringify([event]),
        headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
      });
      await res.text();
      expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
      expect(res.status).toBe(500);
    } finally {
      await server.close();
    }
  }, 60_000);

  test('the Event Grid function throws, so the delivery is retried', async () => {
    const { nsgId, event } = ruleDeleteOfA();
    const runtime = runtimeFor(sandbox, { env: { AzureWebJobsStorage: azurite.connectionString } });
    crashStorageAtFirstWrite();
    const context = new InvocationContext({ functionName: 'onResourceEvent', invocationId: randomUUID(), logHandler: () => undefined });
    await expect(onResourceEvent(event, context, runtime)).rejects.toThrow(/redeliver/);
    expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
  }, 60_000);

  test('handle-event with storage down exits 1 and writes nothing to Azure', async () => {
    const { event } = ruleDeleteOfA();
    await azurite.kill();
    let stderr = '';
    const code = await runCli(['handle-event', '-', '--json'], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
      env: sweepEnv(),
      readStdin: async () => JSON.stringify([event]),
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/storage/i);
    expect(sandbox.findRequests(isWrite)).toHaveLength(0);
  }, 60_000);

  test('with storage down before the event: the function throws and Azure is not written', async () => {
    const { event } = ruleDeleteOfA();
    await azurite.kill();
    const runtime = runtimeFor(sandbox, { env: { AzureWebJobsStorage: azurite.connectionString } });
    const context = new InvocationContext({ functionName: 'onResourceEvent', invocationId: randomUUID(), logHandler: () => undefined });
    await expect(onResourceEvent(event, context, runtime)).rejects.toThrow(/redeliver/);
    expect(sandbox.findRequests(isWrite)).toHaveLength(0);
  }, 60_000);
});
