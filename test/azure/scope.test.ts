// "Stay in scope" as a structural property of the ARM gateway: whatever path builds a request
// (sweep, approval, verify queue), a URL that names a subscription outside AKS_NETGUARD_SUBSCRIPTIONS
// is refused before it leaves the process. Judged on the ARM sandbox's request recording.
import { randomUUID } from 'node:crypto';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { OutOfScopeError, outOfScopeReason } from '../../shared/azure/scope';
import { createRuntime } from '../../shared/runtime';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { startSandbox } from '../helpers/sandboxEnv';

const IN = '11111111-2222-4333-8444-555555555555';
let sandbox: ArmSandbox;
let fleet: SeededFleet;

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox, { subscriptionId: randomUUID() });
});
afterEach(async () => {
  await sandbox.stop();
});

const runtime = (subscriptions: string) =>
  createRuntime({ env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: subscriptions, AKS_NETGUARD_MODE: 'auto' }, pollIntervalMs: 5 });

describe('outOfScopeReason', () => {
  const base = 'https://management.azure.com';
  test.each([
    [`${base}/subscriptions/${IN}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n?api-version=1`, undefined],
    [`${base}/subscriptions/${IN.toUpperCase()}/providers/Microsoft.ContainerService/managedClusters?api-version=1`, undefined],
    [`${base}/subscriptions/${randomUUID()}/resourceGroups/rg?api-version=1`, /outside AKS_NETGUARD_SUBSCRIPTIONS/],
    [`${base}/subscriptions?api-version=1`, /names no subscription/],
    [`${base}/subscriptions/${IN}/../${randomUUID()}/resourceGroups/rg`, /"\." or "\.\." segment/],
    [`${base}/subscriptions/${IN}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/.?api-version=1`, /"\." or "\.\." segment/],
    [`${base}/subscriptions/${IN}/resourceGroups/%2E%2E/x`, /"\." or "\.\." segment/],
  ])('%s', (url, expected) => {
    const reason = outOfScopeReason(url, [IN]);
    if (expected === undefined) expect(reason).toBeUndefined();
    else expect(reason).toMatch(expected);
  });

  test('without a scope only dot segments are refused (listing subscriptions is then how the scope is found)', () => {
    expect(outOfScopeReason(`${base}/subscriptions?api-version=1`, undefined)).toBeUndefined();
    expect(outOfScopeReason(`${base}/subscriptions/${IN}/resourceGroups/rg/providers/A/b/..`, undefined)).toMatch(/segment/);
  });
});

test('a sweep of a subscription outside the scope (the per-subscription sweep queue calls the engine directly): zero requests, error findings', async () => {
  const { engine } = runtime(IN);
  const report = await engine.sweep([fleet.subscriptionId]);
  expect(sandbox.countRequests()).toBe(0);
  expect(report.findings.length).toBeGreaterThan(0);
  expect(report.findings.every((f) => f.status === 'error' && /outside AKS_NETGUARD_SUBSCRIPTIONS/.test(f.detail))).toBe(true);
});

test('an approval for a cluster outside the scope (stored before the scope was narrowed): nothing read, nothing written', async () => {
  const { engine } = runtime(IN);
  const clusterId = fleet.clusters.find((c) => c.label === 'e')!.clusterId;
  const now = new Date();
  const outcome = await engine.executeApproval(
    {
      id: 'a1',
      state: 'approved',
      control: 'http-application-routing',
      clusterId,
      targetId: clusterId,
      detail: 'The HTTP application routing add-on is enabled.',
      change: { kind: 'cluster-property', clusterId, path: ['properties', 'addonProfiles', 'httpApplicationRouting', 'enabled'], before: true, after: false, needsPerson: false, summary: 'Disable the add-on.' },
      reason: 'approve mode',
      requestedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
    } as Parameters<typeof engine.executeApproval>[0],
    'Dana Approver',
  );
  expect(outcome.result).toBe('failed');
  expect(outcome.detail).toMatch(/outside AKS_NETGUARD_SUBSCRIPTIONS/);
  expect(sandbox.countRequests()).toBe(0);
  expect(sandbox.get<ArmManagedCluster>(clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);
});

test('a status URL or read-back the gateway is handed directly is refused too, and the refusal is not retried', async () => {
  const { arm } = runtime(IN);
  const nsgId = fleet.clusters[0].nsgIds[0];
  await expect(arm.getNsg(nsgId)).rejects.toBeInstanceOf(OutOfScopeError);
  await expect(arm.operationStatus({ resourceId: nsgId, statusUrl: `${sandbox.endpoint}/subscriptions/${fleet.subscriptionId}/providers/Microsoft.ContainerService/locations/westeurope/operations/x?api-version=1` })).rejects.toBeInstanceOf(OutOfScopeError);
  expect(sandbox.countRequests()).toBe(0);
  // In scope, the same read goes through.
  const inScope = runtime(`${IN},${fleet.subscriptionId}`);
  await expect(inScope.arm.getNsg(nsgId)).resolves.toMatchObject({ id: nsgId });
  expect(sandbox.countRequests()).toBe(1);
});
