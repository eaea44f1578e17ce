// Red team: event input that is valid JSON but not valid text. JSON can spell half of a UTF-16
// surrogate pair ("\ud800"); Event Grid never sends one. Through `handle-event` with storage set, such
// an event must be a malformed event (exit 2, named, nothing done) — not "storage is unavailable"
// (exit 1, which in the Function App means Event Grid redelivers the batch for 24 hours).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import { useAzurite } from '../helpers/azurite';
import { startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, OP, pick, ruleIdOf, seedFleet } from '../functions/eventRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-redteam-events-'));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
});

afterEach(async () => {
  await sandbox.stop();
});

async function handleEvent(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = path.join(tmp, `event-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, text);
  let stdout = '';
  let stderr = '';
  const code = await runCli(['handle-event', file, '--json'], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AzureWebJobsStorage: azurite.connectionString },
  });
  return { code, stdout, stderr };
}

test('an event id holding a lone surrogate is a malformed event (exit 2), not a storage outage to retry', async () => {
  const e = fleetEvent(OP.ruleDelete, ruleIdOf(pick(fleet, 'a').nsgIds[0]));
  // JSON.stringify would escape nothing here; the escape is written into the JSON text as a sender would.
  const text = JSON.stringify(e).replace(`"id":"${e.id}"`, `"id":"\\ud800${e.id}"`);
  expect(text).toContain('\\ud800');

  const r = await handleEvent(text);

  expect(r.stderr).not.toMatch(/Storage is unavailable/);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/malformed event input/);
  expect(sandbox.countRequests()).toBe(0);
}, 30_000);

test('a resource id holding a lone surrogate is malformed too (exit 2, zero ARM requests)', async () => {
  const e = fleetEvent(OP.ruleWrite, ruleIdOf(pick(fleet, 'b').nsgIds[0], 'x\ud800y'));
  const r = await handleEvent(JSON.stringify(e));
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/malformed event input: .*not valid Unicode text/);
  expect(sandbox.countRequests()).toBe(0);
}, 30_000);
