// Red team, as a new user: what the text report says after a sweep of the drifted demo fleet. The
// closing line must not read as "8 of 9 clusters drifted" when 7 clusters hold 8 drifted findings.
import { runCli } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { startSandbox } from '../helpers/sandboxEnv';

let sandbox: ArmSandbox;

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await sandbox.stop();
});

async function sweep(args: string[]): Promise<string> {
  let stdout = '';
  const code = await runCli(['sweep', '--mode', 'report', ...args], { stdout: (t) => (stdout += t), stderr: () => undefined, env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint } });
  expect(code).toBe(0);
  return stdout;
}

test('the closing line of the text report counts clusters as clusters and findings as findings', async () => {
  const fleet = seedDriftedFleet(sandbox);
  const json = JSON.parse(await sweep(['--json', '--subscription', fleet.subscriptionId])) as RunReport;
  const driftedClusters = new Set(json.findings.filter((f) => f.status === 'drift').map((f) => f.resourceId.toLowerCase())).size;
  // The fleet has more drifted findings than drifted clusters (aks-managed-vnet has two).
  expect(json.summary.drift).toBeGreaterThan(driftedClusters);

  const text = await sweep(['--subscription', fleet.subscriptionId]);
  const last = text.trim().split('\n').pop()!;
  expect(last).toContain(`${json.summary.resources} cluster(s) judged, ${driftedClusters} with drift.`);
  expect(last).toContain(`${json.summary.drift} finding(s) drifted`);
}, 30_000);
