// The real executable: `node bin/aks-netguard.js sweep --json` as a child process against a sandbox
// started by this test, exactly as a user (or CI) would run it after `npm ci`.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ArmSandbox } from '../../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { CONTROL_IDS, type RunReport } from '../../shared/types';
import { findingsOf, sshDecisionInSandbox, startSandbox, writesTo } from '../helpers/sandboxEnv';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'aks-netguard.js');

let sandbox: ArmSandbox;
let fleet: SeededFleet;

beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'shared', 'cli', 'run.js'))) {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  }
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
}, 120_000);

afterAll(async () => {
  await sandbox?.stop();
});

/** Runs the bin without blocking this process (the sandbox answering it lives here). */
function runBin(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('sweep --json from the real bin judges the fleet, fixes the NSGs and prints one JSON object', async () => {
  const run = await runBin(['sweep', '--json'], { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId });
  expect(run.stderr).not.toMatch(/not built yet/);
  expect(run.code).toBe(0);
  const report = JSON.parse(run.stdout) as RunReport;
  expect(report.summary.resources).toBe(fleet.clusters.length);
  for (const c of fleet.clusters) expect(new Set(findingsOf(report, c.clusterId).map((f) => f.control))).toEqual(new Set(CONTROL_IDS));
  const b = fleet.clusters.find((c) => c.label === 'b')!;
  expect(findingsOf(report, b.clusterId, 'node-ssh-deny')[0]).toMatchObject({ status: 'drift', action: 'remediated' });
  expect(writesTo(sandbox, b.nsgIds[0]).map((r) => r.path.split('/').pop())).toEqual([NETGUARD_SSH_RULE_NAME]);
  expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Deny');
  const a = fleet.clusters.find((c) => c.label === 'a')!;
  expect(writesTo(sandbox, a.nsgIds[0])).toEqual([]);
}, 60_000);

test('the bin exits 2 on a bad --mode, before touching the sandbox', async () => {
  const before = sandbox.requests.length;
  const run = await runBin(['sweep', '--mode', 'nope'], { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint });
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/--mode/);
  expect(sandbox.requests.length).toBe(before);
}, 60_000);
