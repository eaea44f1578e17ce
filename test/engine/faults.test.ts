// The engine under ARM faults, end to end through the real SDK clients: throttling, outages, refused
// permissions, concurrent changes (412), writes that do not take, stalls, resets and answers lost
// after Azure applied the write. One failure is one error finding, never an aborted or hung sweep;
// nothing unverified is ever called remediated, and NetGuard's own applied write always is.
// Stateless (no storage).
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import { Engine } from '../../shared/engine/engine';
import type { DeferredUpdateSink, PendingClusterUpdate } from '../../shared/engine/deferred';
import type { ArmSandbox } from '../../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, securityRule, seedDriftedFleet, type SeededCluster, type SeededFleet } from '../../testkit/fleet';
import { CONTROL_IDS } from '../../shared/types';
import { clusterIn, engineFor, findingsOf, onlyFinding, settingsFor, sshDecisionInSandbox, startSandbox, writesTo } from '../helpers/sandboxEnv';

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

  test('a cluster id: every control of that cluster but instance-metadata (sweep only: no event reads Kubernetes objects)', async () => {
    const e = seeded('e');
    const { engine } = engineFor(sandbox);
    const report = await engine.reconcile(e.clusterId);
    expect(report.findings.map((f) => f.control).sort()).toEqual(CONTROL_IDS.filter((c) => c !== 'instance-metadata').sort());
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

describe('lost answers, stalls and resets', () => {
  const ROUTING_AUTO = { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' };
  const clusterOpPolls = /\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operations\//i;

  /** An engine whose gateway has a short per-try timeout and short back-off (no real seconds waited). */
  function engineWith(opts: { timeoutMs?: number; deadlineMs?: number; env?: Record<string, string>; defer?: DeferredUpdateSink } = {}): Engine {
    const arm = new ArmGateway({
      endpoint: sandbox.endpoint,
      pollIntervalMs: 5,
      requestTimeoutMs: opts.timeoutMs,
      operationDeadlineMs: opts.deadlineMs,
      retryOptions: { retryDelayInMs: 5, maxRetryDelayInMs: 20, maxRetryAfterInMs: 20 },
    });
    return new Engine({ arm, settings: settingsFor(sandbox, opts.env), deferClusterUpdates: opts.defer });
  }

  test('a rule PUT applied but answered 503 (the retry gets 412) is NetGuard’s own fix: remediated, not "someone else"', async () => {
    const c = seeded('c'); // an update of NetGuard's existing rule, with If-Match
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(c.nsgIds[0])), status: 503, afterApplying: true });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(writesTo(sandbox, c.nsgIds[0]).map((r) => [r.status, !!r.applied])).toEqual([
      [503, true],
      [412, false],
    ]);
    const f = onlyFinding(report, c.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(f.detail).not.toMatch(/someone else/);
    expect(sshDecisionInSandbox(sandbox, c.nsgIds[0], c.nodeSubnetIds[0], ['10.3.0.0/22'])).toBe('Deny');
    expect(report.summary.errors).toBe(0);
  });

  test('a rule PUT applied, then the connection reset: re-read, remediated', async () => {
    const b = seeded('b');
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(b.nsgIds[0])), fault: 'reset', afterApplying: true });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(writesTo(sandbox, b.nsgIds[0])[0]).toMatchObject({ fault: 'reset', applied: true });
    expect(onlyFinding(report, b.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Deny');
  });

  test('a rule PUT applied but never answered (the try times out): re-read, remediated', async () => {
    const b = seeded('b');
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(b.nsgIds[0])), fault: 'stall', afterApplying: true });
    const report = await engineWith({ timeoutMs: 200 }).sweep([fleet.subscriptionId]);
    expect(writesTo(sandbox, b.nsgIds[0])[0]).toMatchObject({ fault: 'stall', applied: true });
    expect(onlyFinding(report, b.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'remediated' });
  });

  test('a rule PUT reset every time and never applied stays an error (a lost answer is re-read, not assumed)', async () => {
    const b = seeded('b');
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(rulePath(b.nsgIds[0])), fault: 'reset', times: 50 });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(onlyFinding(report, b.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'error', action: 'none' });
    expect(writesTo(sandbox, b.nsgIds[0])).toHaveLength(4);
    expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Allow');
  });

  test('a cluster PUT applied but answered 503 (the retry gets 412): the cluster is re-read and followed, remediated', async () => {
    const e = seeded('e');
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(e.clusterId), status: 503, afterApplying: true });
    const report = await engineWith({ env: ROUTING_AUTO }).sweep([fleet.subscriptionId]);
    expect(writesTo(sandbox, e.clusterId).map((r) => [r.status, !!r.applied])).toEqual([
      [503, true],
      [412, false],
    ]);
    const f = onlyFinding(report, e.clusterId, 'http-application-routing');
    expect(f).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(f.detail).not.toMatch(/someone else/);
    expect(clusterIn(sandbox, e.clusterId).properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
  });

  test('a cluster PUT applied, then the connection reset: remediated', async () => {
    const e = seeded('e');
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(e.clusterId), fault: 'reset', afterApplying: true });
    const report = await engineWith({ env: ROUTING_AUTO }).sweep([fleet.subscriptionId]);
    expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'drift', action: 'remediated' });
  });

  test('the verify queue: status polls of an applied update keep failing; the cluster is read instead and the fix verified', async () => {
    const e = seeded('e');
    const queued: PendingClusterUpdate[] = [];
    const engine = engineWith({ env: ROUTING_AUTO, defer: { enqueue: async (u) => void queued.push(u) } });
    const report = await engine.sweep([fleet.subscriptionId]);
    expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ action: 'reported' });
    expect(queued).toHaveLength(1);
    sandbox.failNext({ method: 'GET', pathPattern: clusterOpPolls, status: 429, times: Infinity });
    const states: string[] = [];
    for (let look = 0; look < 10 && states[states.length - 1] !== 'remediated'; look++) states.push((await engine.verifyClusterUpdate(queued[0])).state);
    expect(states).not.toContain('failed');
    expect(states[states.length - 1]).toBe('remediated');
    expect(sandbox.countRequests({ method: 'GET', path: clusterOpPolls, status: 429 })).toBeGreaterThan(0);
  });

  test('the verify queue: neither the status nor the cluster can be read; the look says pending (queued again), it does not throw or fail', async () => {
    const e = seeded('e');
    const queued: PendingClusterUpdate[] = [];
    const engine = engineWith({ env: ROUTING_AUTO, defer: { enqueue: async (u) => void queued.push(u) } });
    await engine.sweep([fleet.subscriptionId]);
    sandbox.failNext({ method: 'GET', pathPattern: clusterOpPolls, status: 503, times: Infinity });
    sandbox.failNext({ method: 'GET', pathPattern: exactPath(e.clusterId), status: 503, times: Infinity });
    const look = await engine.verifyClusterUpdate(queued[0]);
    expect(look.state).toBe('pending');
    expect(look.detail).toMatch(/503/);
    sandbox.clearFaults();
    let state = look.state as string;
    for (let i = 0; i < 5 && state === 'pending'; i++) state = (await engine.verifyClusterUpdate(queued[0])).state;
    expect(state).toBe('remediated');
  });

  test('a stalled NSG list: the subscription is an error finding naming it, the other subscription is judged', async () => {
    seedDriftedFleet(sandbox, { subscriptionId: OTHER_SUB });
    sandbox.failNext({ method: 'GET', pathPattern: new RegExp(`^/subscriptions/${OTHER_SUB}/providers/Microsoft\\.Network/networkSecurityGroups$`, 'i'), fault: 'stall', times: Infinity });
    const report = await engineWith({ timeoutMs: 100 }).sweep([OTHER_SUB, fleet.subscriptionId]);
    const failed = report.findings.filter((f) => f.resourceId === `/subscriptions/${OTHER_SUB}`);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect([f.status, f.detail.includes(OTHER_SUB)]).toEqual(['error', true]);
    expect(failed[0].detail).toMatch(/did not answer/);
    expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny').action).toBe('remediated');
  });

  test('a rule write whose operation never ends: NetGuard stops waiting, re-reads, and the sweep reports', async () => {
    sandbox.networkLroPolls = Number.MAX_SAFE_INTEGER;
    const report = await engineWith({ deadlineMs: 300 }).sweep([fleet.subscriptionId]);
    // The rule is in place as written (the NSG enforces it while Azure still says Updating).
    expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(report.summary.resources).toBe(fleet.clusters.length);
  });

  test('a cluster update whose operation never ends: the sweep reports it as an error, not as fixed', async () => {
    sandbox.lroPolls = Number.MAX_SAFE_INTEGER;
    const report = await engineWith({ deadlineMs: 300, env: ROUTING_AUTO }).sweep([fleet.subscriptionId]);
    const f = onlyFinding(report, seeded('e').clusterId, 'http-application-routing');
    expect(f).toMatchObject({ status: 'error', action: 'none' });
    expect(f.detail).toMatch(/did not finish/);
  });

  test('a Retry-After of an hour is honoured only up to the cap: the sweep goes on instead of parking', async () => {
    const list = /\/providers\/Microsoft\.Network\/networkSecurityGroups$/i;
    sandbox.failNext({ method: 'GET', pathPattern: list, status: 429, headers: { 'Retry-After': '3600' } });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(sandbox.findRequests({ method: 'GET', path: list }).map((r) => r.status)).toEqual([429, 200]);
    expect(report.summary.errors).toBe(0);
  });

  test('a 503 without Retry-After on a list call is retried; the sweep is normal', async () => {
    const list = /\/providers\/Microsoft\.ContainerService\/managedClusters$/i;
    sandbox.failNext({ method: 'GET', pathPattern: list, status: 503, times: 2 });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(sandbox.findRequests({ method: 'GET', path: list }).map((r) => r.status)).toEqual([503, 503, 200]);
    expect(report.summary.errors).toBe(0);
    expect(report.summary.remediated).toBe(3);
  });

  test('a reset on a list call is retried; the sweep is normal', async () => {
    sandbox.failNext({ method: 'GET', pathPattern: /\/providers\/Microsoft\.Network\/virtualNetworks$/i, fault: 'reset' });
    const report = await engineWith().sweep([fleet.subscriptionId]);
    expect(sandbox.findRequests((r) => r.fault === 'reset')).toHaveLength(1);
    expect(report.summary.errors).toBe(0);
    expect(report.summary.remediated).toBe(3);
  });
});
