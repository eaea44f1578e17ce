// The engine under ARM faults, end to end through the real SDK clients: throttling, outages, refused
// permissions, concurrent changes (412) and writes that do not take. One failure is one error finding,
// never an aborted sweep, and nothing unverified is ever called remediated. Stateless (no storage).
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../shared/sandbox/armServer';
import { NETGUARD_SSH_RULE_NAME, securityRule, seedDriftedFleet, type SeededCluster, type SeededFleet } from '../../shared/sandbox/fleet';
import { CONTROL_IDS } from '../../shared/types';
import { clusterIn, engineFor, findingsOf, onlyFinding, sshDecisionInSandbox, startSandbox, writesTo } from '../helpers/sandboxEnv';

const OTHER_SUB = '11111111-2222-3333-4444-555555555555';

let sandbox: ArmSandbox;
let fleet: SeededFleet;

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
});

afterEach(async () => {
  await sandbox.stop();
});

const seeded = (label: string): SeededCluster => fleet.clusters.find((x) => x.label === label)!;
const rulePath = (nsgId: string, name = NETGUARD_SSH_RULE_NAME) => `${nsgId}/securityRules/${name}`;
const exactPath = (path: string) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i');

test('a 429 with Retry-After on a list is retried and the sweep completes', async () => {
  sandbox.failNext({ method: 'GET', pathPattern: /\/providers\/Microsoft\.ContainerService\/managedClusters$/i, status: 429, headers: { 'Retry-After': '1' } });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  const lists = sandbox.findRequests({ method: 'GET', path: /\/providers\/Microsoft\.ContainerService\/managedClusters$/i });
  expect(lists.map((r) => r.status)).toEqual([429, 200]);
  expect(report.summary.resources).toBe(fleet.clusters.length);
  expect(report.summary.errors).toBe(0);
  expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny').action).toBe('remediated');
});

test('a 503 burst on one NSG write is an error finding for that cluster only; the others are fixed', async () => {
  const b = seeded('b');
  sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(b.nsgIds[0])), status: 503, times: 50 });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  const f = onlyFinding(report, b.clusterId, 'node-ssh-deny');
  expect(f).toMatchObject({ status: 'error', action: 'none' });
  expect(f.detail).toMatch(/503/);
  expect(sandbox.get<ArmNetworkSecurityGroup>(b.nsgIds[0])!.properties.securityRules ?? []).toEqual([]);
  // Retried a bounded number of times, then given up.
  expect(writesTo(sandbox, b.nsgIds[0]).length).toBeGreaterThan(1);
  expect(writesTo(sandbox, b.nsgIds[0]).length).toBeLessThan(20);
  for (const label of ['c', 'f']) expect(onlyFinding(report, seeded(label).clusterId, 'node-ssh-deny').action).toBe('remediated');
  expect(report.summary.resources).toBe(fleet.clusters.length);
  expect(report.summary.errors).toBe(1);
});

test('a 503 burst on one cluster write is an error finding for that cluster only', async () => {
  const e = seeded('e');
  sandbox.failNext({ method: 'PUT', pathPattern: exactPath(e.clusterId), status: 503, times: 50 });
  const { engine } = engineFor(sandbox, { env: { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' } });
  const report = await engine.sweep([fleet.subscriptionId]);
  expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'error', action: 'none' });
  expect(clusterIn(sandbox, e.clusterId).properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);
  expect(report.summary.errors).toBe(1);
  expect(report.summary.remediated).toBe(3);
});

test('a 403 on listing one subscription gives error findings for it; the other subscription is still swept', async () => {
  seedDriftedFleet(sandbox, { subscriptionId: OTHER_SUB });
  sandbox.failNext({ method: 'GET', pathPattern: new RegExp(`^/subscriptions/${OTHER_SUB}/providers/Microsoft\\.ContainerService/managedClusters$`, 'i'), status: 403 });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([OTHER_SUB, fleet.subscriptionId]);
  const failed = report.findings.filter((f) => f.resourceId.toLowerCase().includes(OTHER_SUB));
  expect(failed.length).toBeGreaterThan(0);
  for (const f of failed) expect(f.status).toBe('error');
  expect(failed[0].detail).toMatch(/403/);
  expect(failed[0].detail).toContain('Microsoft.ContainerService/managedClusters/read');
  expect(writesTo(sandbox, `/subscriptions/${OTHER_SUB}`)).toEqual([]);
  for (const c of fleet.clusters) expect(findingsOf(report, c.clusterId)).not.toHaveLength(0);
  expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny').action).toBe('remediated');
});

test('a 412 race on a rule: someone moves the Allow between NetGuard’s read and write; NetGuard re-reads, re-judges and still fixes it', async () => {
  const b = seeded('b');
  const c = seeded('c');
  const allowId = rulePath(c.nsgIds[0], 'allow-ssh-from-vnet');
  // When NetGuard writes b's NSG (before it reaches c), an operator moves c's Allow to priority 250:
  // c's NSG gets a new ETag, so NetGuard's update (If-Match on the ETag it listed) answers 412.
  sandbox.onChange((change) => {
    if (change.resourceId.toLowerCase() !== rulePath(b.nsgIds[0]).toLowerCase()) return;
    const allow = sandbox.get<ArmSecurityRule>(allowId)!;
    sandbox.put({ ...securityRule('allow-ssh-from-vnet', { ...allow.properties, priority: 250 }), id: allowId });
  });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  const puts = writesTo(sandbox, c.nsgIds[0]);
  expect(puts.map((r) => [r.status, !!r.injected])).toEqual([
    [412, false],
    [200, false],
  ]);
  expect(puts[1].headers['if-match']).not.toBe(puts[0].headers['if-match']);
  expect(onlyFinding(report, c.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'remediated' });
  const rule = sandbox.get<{ properties: { priority: number } }>(rulePath(c.nsgIds[0]))!;
  expect(rule.properties.priority).toBeLessThan(250);
  expect(sshDecisionInSandbox(sandbox, c.nsgIds[0], c.nodeSubnetIds[0])).toBe('Deny');
});

test('a 412 race on a cluster: a tag added between read and write survives NetGuard’s retried write', async () => {
  const b = seeded('b');
  const e = seeded('e');
  sandbox.onChange((change) => {
    if (change.resourceId.toLowerCase() !== rulePath(b.nsgIds[0]).toLowerCase()) return;
    // Without its eTag, so the sandbox gives the changed cluster a new one, as ARM does.
    const { eTag: _old, ...cluster } = clusterIn(sandbox, e.clusterId);
    sandbox.put({ ...cluster, tags: { ...(cluster.tags ?? {}), owner: 'team-blue' } });
  });
  const { engine } = engineFor(sandbox, { env: { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' } });
  const report = await engine.sweep([fleet.subscriptionId]);
  const puts = writesTo(sandbox, e.clusterId);
  expect(puts.map((r) => r.status)).toEqual([412, 200]);
  expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'drift', action: 'remediated' });
  const now = clusterIn(sandbox, e.clusterId);
  expect(now.tags).toMatchObject({ owner: 'team-blue' });
  expect(now.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
  expect((puts[1].body as ArmManagedCluster).tags).toMatchObject({ owner: 'team-blue' });
});

test('412 forever: an error finding after a bounded number of tries, not a crash', async () => {
  const b = seeded('b');
  sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(b.nsgIds[0])), status: 412, times: 1000 });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  expect(onlyFinding(report, b.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'error', action: 'none' });
  const tries = writesTo(sandbox, b.nsgIds[0]).length;
  expect(tries).toBeGreaterThan(1);
  expect(tries).toBeLessThan(10);
  expect(onlyFinding(report, seeded('c').clusterId, 'node-ssh-deny').action).toBe('remediated');
});

test('a write that does not take is an error, never remediated', async () => {
  const b = seeded('b');
  sandbox.ignoreWritesTo(exactPath(rulePath(b.nsgIds[0])), { method: 'PUT', times: Infinity });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  const f = onlyFinding(report, b.clusterId, 'node-ssh-deny');
  expect(f.status).toBe('error');
  expect(f.action).not.toBe('remediated');
  expect(f.detail).toMatch(/did not take/);
  expect(sandbox.findRequests((r) => !!r.ignoredWrite).length).toBeGreaterThan(0);
  expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Allow');
  expect(report.summary.remediated).toBe(2);
});

test('an update of NetGuard’s rule that does not take is an error, never remediated', async () => {
  const c = seeded('c');
  sandbox.ignoreWritesTo(exactPath(rulePath(c.nsgIds[0])), { method: 'PUT', times: Infinity });
  const { engine } = engineFor(sandbox);
  const report = await engine.sweep([fleet.subscriptionId]);
  const f = onlyFinding(report, c.clusterId, 'node-ssh-deny');
  expect([f.status, f.action]).toEqual(['error', 'none']);
  expect(f.detail).toMatch(/did not take/);
  expect(sshDecisionInSandbox(sandbox, c.nsgIds[0], c.nodeSubnetIds[0], ['10.3.0.0/22'])).toBe('Allow');
});

test('a cluster write that does not take is an error, never remediated', async () => {
  const e = seeded('e');
  sandbox.ignoreWritesTo(exactPath(e.clusterId), { method: 'PUT', times: Infinity });
  const { engine } = engineFor(sandbox, { env: { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' } });
  const report = await engine.sweep([fleet.subscriptionId]);
  expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'error', action: 'none' });
  expect(clusterIn(sandbox, e.clusterId).properties.addonProfiles!.httpApplicationRouting.enabled).toBe(true);
});

describe('reconcile(resourceId)', () => {
  test('an NSG id: node-ssh-deny of the clusters behind it, fixed', async () => {
    const b = seeded('b');
    const { engine } = engineFor(sandbox);
    const report = await engine.reconcile(b.nsgIds[0]);
    expect(report.findings).toEqual([expect.objectContaining({ control: 'node-ssh-deny', resourceId: b.clusterId, targetId: b.nsgIds[0], action: 'remediated' })]);
    expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Deny');
    expect(writesTo(sandbox, seeded('c').nsgIds[0])).toEqual([]);
  });

  test('a subnet id: node-ssh-deny of the clusters using it', async () => {
    const g = seeded('g');
    const { engine } = engineFor(sandbox);
    const report = await engine.reconcile(g.nodeSubnetIds[0].toUpperCase());
    expect(report.findings).toEqual([expect.objectContaining({ control: 'node-ssh-deny', resourceId: g.clusterId, status: 'drift', action: 'reported' })]);
  });

  test('a cluster id: every control of that cluster', async () => {
    const e = seeded('e');
    const { engine } = engineFor(sandbox);
    const report = await engine.reconcile(e.clusterId);
    expect(report.findings.map((f) => f.control).sort()).toEqual([...CONTROL_IDS].sort());
    expect(report.findings.every((f) => f.resourceId === e.clusterId)).toBe(true);
    expect(report.summary.resources).toBe(1);
  });

  test('an unrelated id: zero findings and zero writes', async () => {
    const { engine } = engineFor(sandbox);
    const report = await engine.reconcile(`/subscriptions/${fleet.subscriptionId}/resourceGroups/${fleet.resourceGroup}/providers/Microsoft.Storage/storageAccounts/unrelated`);
    expect(report.findings).toEqual([]);
    expect(report.summary.resources).toBe(0);
    expect(writesTo(sandbox)).toEqual([]);
  });
});
