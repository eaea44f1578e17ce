// api-authorized-ranges, tried as the issue tried it, through the CLI: ranges that together admit
// every address (0.0.0.0/0, or 0.0.0.0/1 + 128.0.0.0/1, or any union without a gap) are drift, are
// refused as AKS_NETGUARD_AUTHORIZED_IP_RANGES (exit 2, nothing sent), and are never recorded as
// known-good nor restored.
import { runCli } from '../../shared/cli/main';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture } from '../../testkit/fleet';
import { TableStateStore } from '../../shared/store/tables';
import type { RunReport } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { clusterIn, onlyFinding, startSandbox, writesTo } from '../helpers/sandboxEnv';

const SUB = '5a1e5a1e-0000-4000-8000-000000000002';
const azurite = useAzurite();
let sandbox: ArmSandbox;
let counter = 0;

async function cli(argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...env } });
  return { code, stdout, stderr };
}

/** A public cluster with the given authorized ranges (a fresh name per test: the store is shared). */
function seedCluster(ranges: string[]): ArmManagedCluster {
  counter++;
  const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: 'rg-ranges', name: `aks-open-${process.pid}-${counter}` });
  cluster.properties.apiServerAccessProfile = { authorizedIPRanges: ranges, enablePrivateCluster: false };
  return sandbox.put(cluster);
}

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await sandbox.stop();
});

describe('AKS_NETGUARD_AUTHORIZED_IP_RANGES that together admit every address', () => {
  test.each([
    ['two IPv4 halves', '0.0.0.0/1,128.0.0.0/1'],
    ['a covering union of unequal blocks', '0.0.0.0/2, 64.0.0.0/2,128.0.0.0/1,10.0.0.0/8'],
    ['two IPv6 halves next to a narrow IPv4 range', '203.0.113.0/24,::/1,8000::/1'],
  ])('are a refused configuration: %s exits 2, names the setting, sends nothing', async (_name, value) => {
    seedCluster([]);
    const run = await cli(['sweep', '--json', '--subscription', SUB, '--mode', 'auto'], { AKS_NETGUARD_AUTHORIZED_IP_RANGES: value });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/AKS_NETGUARD_AUTHORIZED_IP_RANGES/);
    expect(run.stderr).toMatch(/every (IPv4|IPv6)/);
    expect(run.stdout).toBe('');
    expect(sandbox.requests).toEqual([]);
  });

  test('narrow ranges are still accepted and restored', async () => {
    const cluster = seedCluster([]);
    const run = await cli(['sweep', '--json', '--subscription', SUB, '--mode', 'auto'], { AKS_NETGUARD_AUTHORIZED_IP_RANGES: '0.0.0.0/2,203.0.113.0/24' });
    expect(run.code).toBe(0);
    const finding = onlyFinding(JSON.parse(run.stdout) as RunReport, cluster.id, 'api-authorized-ranges');
    expect(finding.action).toBe('remediated');
    expect(clusterIn(sandbox, cluster.id).properties.apiServerAccessProfile?.authorizedIPRanges).toEqual(['0.0.0.0/2', '203.0.113.0/24']);
  }, 30_000);
});

describe('a cluster whose ranges together admit every address', () => {
  test.each([
    ['0.0.0.0/0', ['0.0.0.0/0']],
    ['the two IPv4 halves', ['0.0.0.0/1', '128.0.0.0/1']],
    ['IPv6 halves next to a narrow IPv4 range', ['198.51.100.0/24', '::/1', '8000::/1']],
  ])('is drift (%s), is never recorded as known-good, and is never restored later', async (_name, open) => {
    const cluster = seedCluster(open);
    const env = { AzureWebJobsStorage: azurite.connectionString, AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto' };
    const first = await cli(['sweep', '--json', '--subscription', SUB], env);
    expect(first.code).toBe(0);
    const finding = onlyFinding(JSON.parse(first.stdout) as RunReport, cluster.id, 'api-authorized-ranges');
    expect(finding.status).toBe('drift');
    expect(finding.detail).toMatch(/every IPv[46] address/);
    expect(await TableStateStore.fromConnectionString(azurite.connectionString).getBaseline(cluster.id)).toBeUndefined();

    // Someone then clears the ranges: with no known-good list and no setting, NetGuard can only report.
    const cleared = clusterIn(sandbox, cluster.id);
    cleared.properties.apiServerAccessProfile = { authorizedIPRanges: [], enablePrivateCluster: false };
    sandbox.put(cleared);
    const second = await cli(['sweep', '--json', '--subscription', SUB], env);
    const again = onlyFinding(JSON.parse(second.stdout) as RunReport, cluster.id, 'api-authorized-ranges');
    expect(again.status).toBe('drift');
    expect(again.action).toBe('reported');
    expect(writesTo(sandbox, cluster.id)).toEqual([]);
    expect(clusterIn(sandbox, cluster.id).properties.apiServerAccessProfile?.authorizedIPRanges).toEqual([]);
  }, 60_000);
});
