// `aks-netguard sweep`, in-process through runCli with captured output and its own environment, against
// the ARM sandbox seeded with the drifted fleet. Checks the DESIGN.md --json contract, exit codes,
// where subscriptions come from, and the table layout.
import { runCli } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { CONTROL_IDS, type RunReport } from '../../shared/types';
import { findingsOf, isWrite, startSandbox } from '../helpers/sandboxEnv';

const OTHER_SUB = '44444444-5555-6666-7777-888888888888';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], env: Record<string, string>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
  return { code, stdout, stderr };
}

let sandbox: ArmSandbox;
let fleet: SeededFleet;
const sandboxEnv = (extra: Record<string, string> = {}) => ({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...extra });
const label = (l: string) => fleet.clusters.find((c) => c.label === l)!;

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
});

afterEach(async () => {
  await sandbox.stop();
});

const STATUSES = ['compliant', 'drift', 'exempt', 'error'];
const ACTIONS = ['none', 'remediated', 'approval-requested', 'reported', 'skipped'];

describe('sweep --json', () => {
  test('prints exactly one JSON object with the DESIGN.md fields, every control for every cluster, and a summary that recounts', async () => {
    const run = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId], sandboxEnv());
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport; // throws if anything else is on stdout
    expect(Object.keys(report).sort()).toEqual(['findings', 'summary']);
    expect(Object.keys(report.summary).sort()).toEqual(['approvalRequested', 'drift', 'errors', 'exempt', 'remediated', 'resources']);
    for (const f of report.findings) {
      expect(Object.keys(f).sort()).toEqual(['action', 'control', 'detail', 'resourceId', 'status', 'targetId']);
      expect(CONTROL_IDS).toContain(f.control);
      expect(STATUSES).toContain(f.status);
      expect(ACTIONS).toContain(f.action);
      expect(f.detail.length).toBeGreaterThan(10);
    }
    for (const c of fleet.clusters) {
      expect(new Set(findingsOf(report, c.clusterId).map((f) => f.control))).toEqual(new Set(CONTROL_IDS));
      for (const f of findingsOf(report, c.clusterId)) {
        if (f.control !== 'node-ssh-deny') expect(f.targetId).toBe(c.clusterId);
      }
    }
    const n = (p: (f: RunReport['findings'][number]) => boolean) => report.findings.filter(p).length;
    expect(report.summary).toEqual({
      resources: fleet.clusters.length,
      drift: n((f) => f.status === 'drift'),
      remediated: n((f) => f.action === 'remediated'),
      approvalRequested: n((f) => f.action === 'approval-requested'),
      exempt: n((f) => f.status === 'exempt'),
      errors: n((f) => f.status === 'error'),
    });
    expect(report.summary.remediated).toBe(3);
    // Stateless (no AzureWebJobsStorage): approve acts as report, said in the details and on stderr.
    expect(report.summary.approvalRequested).toBe(0);
    expect(findingsOf(report, label('e').clusterId, 'http-application-routing')[0].detail).toMatch(/without storage/i);
    expect(run.stderr).toMatch(/approve acts as report/);
  }, 30_000);

  test('--mode report writes nothing and --fail-on-drift exits 3 on unremediated enforced drift', async () => {
    const run = await cli(['sweep', '--json', '--mode', 'report', '--fail-on-drift'], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId }));
    expect(run.code).toBe(3);
    expect(sandbox.countRequests((r) => r.method === 'PUT' || r.method === 'DELETE')).toBe(0);
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report.summary.remediated).toBe(0);
    expect(report.summary.drift).toBeGreaterThan(0);
  });

  test('without --fail-on-drift the same drift exits 0', async () => {
    const run = await cli(['sweep', '--json', '--mode', 'report'], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId }));
    expect(run.code).toBe(0);
  });

  test('--fail-on-drift exits 0 when all enforced drift was remediated (advisory drift does not count)', async () => {
    // Keep the compliant cluster, the default-rules NSG (fixable in auto), the managed-VNet one
    // (fixable, plus advisory egress drift) and the exempt one.
    for (const l of ['c', 'd', 'e', 'g', 'i']) sandbox.remove(label(l).clusterId);
    const run = await cli(['sweep', '--json', '--fail-on-drift'], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId }));
    const report = JSON.parse(run.stdout) as RunReport;
    expect(report.summary.remediated).toBe(2);
    expect(report.findings.some((f) => f.control === 'egress-lockdown' && f.status === 'drift')).toBe(true);
    expect(run.code).toBe(0);
  }, 30_000);
});

describe('exit 2 for bad usage or configuration, with nothing sent and nothing written', () => {
  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['a bad --mode', ['sweep', '--mode', 'fix-everything'], {}, /--mode.*fix-everything/],
    ['a bad AKS_NETGUARD_MODE', ['sweep'], { AKS_NETGUARD_MODE: 'sometimes' }, /AKS_NETGUARD_MODE.*sometimes/],
    ['a bad AKS_NETGUARD_MODE_<ID>', ['sweep'], { AKS_NETGUARD_MODE_NODE_SSH_DENY: 'yes' }, /AKS_NETGUARD_MODE_NODE_SSH_DENY/],
    ['an unknown flag', ['sweep', '--fix-it-all'], {}, /unknown option/i],
    ['a bad --subscription', ['sweep', '--subscription', 'not a sub!'], {}, /--subscription/],
  ];
  test.each(cases)('%s', async (_name, argv, env, message) => {
    const run = await cli(argv, sandboxEnv(env));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
    expect(sandbox.requests).toEqual([]);
  });

  test('plain http to a non-loopback endpoint is refused before any request (0.0.0.0 would reach the sandbox)', async () => {
    const port = new URL(sandbox.endpoint).port;
    const run = await cli(['sweep', '--json'], { AKS_NETGUARD_ARM_ENDPOINT: `http://0.0.0.0:${port}`, AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/plain http/i);
    expect(run.stdout).toBe('');
    expect(sandbox.requests).toEqual([]);
  });
});

test('--help exits 0 and shows examples', async () => {
  const top = await cli(['--help'], sandboxEnv());
  expect(top.code).toBe(0);
  expect(top.stdout).toMatch(/Examples:/);
  expect(top.stdout).toMatch(/aks-netguard sweep/);
  const sweep = await cli(['sweep', '--help'], sandboxEnv());
  expect(sweep.code).toBe(0);
  expect(sweep.stdout).toMatch(/--fail-on-drift/);
  expect(sandbox.requests).toEqual([]);
});

describe('which subscriptions are swept', () => {
  beforeEach(() => {
    seedDriftedFleet(sandbox, { subscriptionId: OTHER_SUB });
  });
  const subsIn = (run: CliRun) =>
    [...new Set((JSON.parse(run.stdout) as RunReport).findings.map((f) => f.resourceId.split('/')[2].toLowerCase()))].sort();

  test('--subscription narrows AKS_NETGUARD_SUBSCRIPTIONS, and never widens it (the scope: exit 2, no request)', async () => {
    const run = await cli(['sweep', '--json', '--mode', 'report', '--subscription', OTHER_SUB], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: `${fleet.subscriptionId},${OTHER_SUB}` }));
    expect(subsIn(run)).toEqual([OTHER_SUB]);
    sandbox.resetRequests();
    const outside = await cli(['sweep', '--json', '--mode', 'report', '--subscription', OTHER_SUB], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId }));
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/outside AKS_NETGUARD_SUBSCRIPTIONS/);
    expect(sandbox.countRequests()).toBe(0);
  });

  test('else AKS_NETGUARD_SUBSCRIPTIONS', async () => {
    const run = await cli(['sweep', '--json', '--mode', 'report'], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: OTHER_SUB }));
    expect(subsIn(run)).toEqual([OTHER_SUB]);
    expect(sandbox.countRequests({ method: 'GET', path: '/subscriptions' })).toBe(0);
  });

  test('else every subscription the identity lists', async () => {
    const run = await cli(['sweep', '--json', '--mode', 'report'], sandboxEnv());
    expect(subsIn(run)).toEqual([fleet.subscriptionId, OTHER_SUB].sort());
    expect(sandbox.countRequests({ method: 'GET', path: '/subscriptions' })).toBe(1);
    expect(sandbox.findRequests(isWrite)).toEqual([]);
  });
});

test('the table groups findings by cluster, drifted clusters first and drift before compliance', async () => {
  const run = await cli(['sweep', '--mode', 'report'], sandboxEnv({ AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId }));
  expect(run.code).toBe(0);
  const lines = run.stdout.split('\n');
  const headerIndex = (clusterId: string) => {
    const hits = lines.map((l, i) => (l.includes(`(${clusterId})`) ? i : -1)).filter((i) => i >= 0);
    expect(hits).toHaveLength(1); // one group per cluster
    return hits[0];
  };
  const compliant = headerIndex(label('a').clusterId);
  for (const c of fleet.clusters.filter((x) => x.driftedControls.length > 0 && !x.exempt)) expect(headerIndex(c.clusterId)).toBeLessThan(compliant);
  // Inside a drifted group, its DRIFT lines come before its ok lines.
  const start = headerIndex(label('b').clusterId);
  const group = lines.slice(start + 1, lines.indexOf('', start));
  const statuses = group.filter((l) => /^ {2}\S/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
  expect(statuses[0]).toBe('DRIFT');
  expect(statuses.slice(1).every((s) => s === 'ok')).toBe(true);
  expect(statuses).toHaveLength(CONTROL_IDS.length);
  expect(run.stdout).toMatch(/cluster\(s\) judged/);
});
