// processEventBatch end to end: Microsoft's published Event Grid samples rewritten for NSG, rule,
// subnet, VNet, cluster and agent pool events, handled with the real SDK clients against the ARM
// sandbox and a real Azurite for the duplicate ledger, approvals and the flap guard's history.
import type { ArmManagedCluster, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import { processEventBatch, type EventBatchOutcome } from '../../shared/events/handler';
import { parseEvents } from '../../shared/events/parse';
import type { Runtime } from '../../shared/runtime';
import type { ArmSandbox } from '../../testkit/armServer';
import { securityRule, type SeededFleet } from '../../testkit/fleet';
import type { TableStateStore } from '../../shared/store/tables';
import type { Finding } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { findingsOf, freshStore, onlyFinding, sshDecisionInSandbox, startSandbox } from '../helpers/sandboxEnv';
import { sampleEvent } from './eventSamples';
import {
  CHANGER,
  fleetEvent,
  netGuardRulesIn,
  OP,
  pick,
  ruleIdOf,
  rulePutsThatTook,
  runtimeFor,
  seedFleet,
  writeRequests,
} from '../functions/eventRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let store: TableStateStore;


beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
  store = freshStore(azurite.connectionString);
});

afterEach(async () => {
  await sandbox.stop();
});

/** Parses like the function and the CLI do (strict), then processes the batch. */
function handle(events: unknown[], runtime: Runtime, clock?: () => Date): Promise<EventBatchOutcome> {
  return processEventBatch(parseEvents(events), runtime, clock ? { clock } : {});
}

// Cluster (a) is the compliant reference: its node subnet's NSG holds NetGuard's rule; it has a pod subnet too.
const compliant = () => pick(fleet, 'a');
const prefixesOfA = ['10.1.0.0/22', '10.1.4.0/22'];

function deleteNetGuardRule(nsgId: string): void {
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
}

function sshOf(f: Finding[]): Finding[] {
  return f.filter((x) => x.control === 'node-ssh-deny');
}

describe('NetGuard resources, each kind of event', () => {
  test('a security rule delete of NetGuard’s rule on a node subnet’s NSG: the rule is re-created and SSH is denied again', async () => {
    const a = compliant();
    const nsgId = a.nsgIds[0];
    deleteNetGuardRule(nsgId);
    expect(sshDecisionInSandbox(sandbox, nsgId, a.nodeSubnetIds[0], prefixesOfA)).toBe('Allow');

    const outcome = await handle([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))], runtimeFor(sandbox, { store }));

    expect(outcome.retry).toBeUndefined();
    expect(onlyFinding(outcome.report, a.clusterId, 'node-ssh-deny')).toMatchObject({ targetId: nsgId, status: 'drift', action: 'remediated' });
    // A rule event leads to node-ssh-deny only, not to the cluster's other controls.
    expect(outcome.report.findings.every((f) => f.control === 'node-ssh-deny')).toBe(true);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    expect(sshDecisionInSandbox(sandbox, nsgId, a.nodeSubnetIds[0], prefixesOfA)).toBe('Deny');
    const put = rulePutsThatTook(sandbox, nsgId);
    expect(put).toHaveLength(1);
    expect(put[0].headers['if-none-match']).toBe('*');
    expect(outcome.log).toEqual([expect.objectContaining({ outcome: 'reconciled', operation: OP.ruleDelete, reconciled: [a.clusterId] })]);
  });

  test('the same rule delete as a CloudEvents 1.0 event is handled the same way', async () => {
    const a = compliant();
    deleteNetGuardRule(a.nsgIds[0]);
    const outcome = await handle([fleetEvent(OP.ruleDelete, ruleIdOf(a.nsgIds[0]), { schema: 'cloudevents' })], runtimeFor(sandbox, { store }));
    expect(onlyFinding(outcome.report, a.clusterId, 'node-ssh-deny').action).toBe('remediated');
    expect(netGuardRulesIn(sandbox, a.nsgIds[0])).toHaveLength(1);
  });

  test('an NSG write that adds an Allow shadowing NetGuard’s Deny: fixed, the Allow left alone', async () => {
    const a = compliant();
    const nsgId = a.nsgIds[0];
    sandbox.put({
      id: ruleIdOf(nsgId, 'allow-ssh-ops'),
      ...securityRule('allow-ssh-ops', {
        protocol: 'Tcp',
        sourceAddressPrefix: 'VirtualNetwork',
        destinationAddressPrefix: '*',
        destinationPortRange: '22',
        access: 'Allow',
        priority: 150,
        direction: 'Inbound',
      }),
    });
    expect(sshDecisionInSandbox(sandbox, nsgId, a.nodeSubnetIds[0], prefixesOfA)).toBe('Allow');

    const outcome = await handle([fleetEvent(OP.nsgWrite, nsgId)], runtimeFor(sandbox, { store }));

    expect(onlyFinding(outcome.report, a.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(sshDecisionInSandbox(sandbox, nsgId, a.nodeSubnetIds[0], prefixesOfA)).toBe('Deny');
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    expect(sandbox.get(ruleIdOf(nsgId, 'allow-ssh-ops'))).toMatchObject({ properties: { access: 'Allow', priority: 150 } });
    // NetGuard's rule already existed: it is updated on its ETag, never blindly.
    const puts = rulePutsThatTook(sandbox, nsgId);
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['if-match']).toBeTruthy();
  });

  test('a subnet write detaching the NSG from a node subnet: drift reported on the subnet, nothing written', async () => {
    const a = compliant();
    const subnetId = a.nodeSubnetIds[0];
    const vnetId = subnetId.replace(/\/subnets\/[^/]+$/, '');
    const vnet = sandbox.get<ArmVirtualNetwork>(vnetId)!;
    delete vnet.properties.subnets!.find((s) => s.name === 'nodes')!.properties.networkSecurityGroup;
    sandbox.put(vnet);

    const outcome = await handle([fleetEvent(OP.subnetWrite, subnetId)], runtimeFor(sandbox, { store }));

    const ssh = sshOf(findingsOf(outcome.report, a.clusterId));
    expect(ssh).toEqual([expect.objectContaining({ targetId: subnetId, status: 'drift', action: 'reported' })]);
    expect(ssh[0].detail).toMatch(/no (NSG|network security group)/i);
    expect(writeRequests(sandbox)).toHaveLength(0);
  });

  test('a VNet write: node-ssh-deny of the clusters in it is reconciled (here: the missing Deny is added)', async () => {
    const b = pick(fleet, 'b');
    const vnetId = b.nodeSubnetIds[0].replace(/\/subnets\/[^/]+$/, '');
    const outcome = await handle([fleetEvent(OP.vnetWrite, vnetId)], runtimeFor(sandbox, { store }));
    expect(outcome.report.findings.map((f) => [f.control, f.resourceId])).toEqual([['node-ssh-deny', b.clusterId]]);
    expect(outcome.report.findings[0]).toMatchObject({ targetId: b.nsgIds[0], action: 'remediated' });
    expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Deny');
  });

  test('a managed cluster write clearing authorizedIPRanges: approval requested by default; in auto mode restored with If-Match', async () => {
    const a = compliant();
    const first = await handle([fleetEvent(OP.clusterWrite, a.clusterId)], runtimeFor(sandbox, { store }));
    // A cluster event judges every control of the cluster; the compliant ranges become the baseline.
    expect(findingsOf(first.report, a.clusterId).map((f) => f.control).sort()).toEqual(
      ['api-authorized-ranges', 'egress-lockdown', 'http-application-routing', 'network-policy', 'node-ssh-deny', 'service-mesh'],
    );
    const rangesBefore = sandbox.get<ArmManagedCluster>(a.clusterId)!.properties.apiServerAccessProfile!.authorizedIPRanges;
    expect(rangesBefore?.length).toBeGreaterThan(0);

    const cleared = sandbox.get<ArmManagedCluster>(a.clusterId)!;
    cleared.properties.apiServerAccessProfile = { authorizedIPRanges: [] };
    sandbox.put(cleared);
    sandbox.resetRequests();

    const asked = await handle([fleetEvent(OP.clusterWrite, a.clusterId)], runtimeFor(sandbox, { store }));
    expect(onlyFinding(asked.report, a.clusterId, 'api-authorized-ranges')).toMatchObject({ status: 'drift', action: 'approval-requested' });
    expect(writeRequests(sandbox)).toHaveLength(0);
    const pending = await store.listApprovals('pending');
    expect(pending.map((p) => [p.control, p.targetId.toLowerCase()])).toEqual([['api-authorized-ranges', a.clusterId.toLowerCase()]]);
    expect(pending[0].changedBy).toBe(CHANGER.name);

    const etagRead = sandbox.get<ArmManagedCluster>(a.clusterId)!.eTag;
    const auto = runtimeFor(sandbox, { store, env: { AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto' } });
    const fixed = await handle([fleetEvent(OP.clusterWrite, a.clusterId)], auto);
    expect(onlyFinding(fixed.report, a.clusterId, 'api-authorized-ranges')).toMatchObject({ status: 'drift', action: 'remediated' });
    const clusterPuts = sandbox.findRequests({ method: 'PUT', path: a.clusterId });
    expect(clusterPuts).toHaveLength(1);
    expect(clusterPuts[0].headers['if-match']).toBe(etagRead);
    expect(sandbox.get<ArmManagedCluster>(a.clusterId)!.properties.apiServerAccessProfile!.authorizedIPRanges).toEqual(rangesBefore);
  });

  test('an agent pool write bringing a new subnet and NSG into scope: that cluster’s controls, and the new NSG gets the rule', async () => {
    const a = compliant();
    const vnetId = a.nodeSubnetIds[0].replace(/\/subnets\/[^/]+$/, '');
    const newNsgId = a.nsgIds[0].replace(/aks-compliant-nodes-nsg$/, 'aks-compliant-pool2-nsg');
    const oldNsg = sandbox.get<{ id: string; location: string; properties: Record<string, unknown> }>(a.nsgIds[0])!;
    sandbox.put({ id: newNsgId, location: oldNsg.location, properties: { securityRules: [] } });
    const vnet = sandbox.get<ArmVirtualNetwork>(vnetId)!;
    const template = vnet.properties.subnets![0];
    vnet.properties.subnets!.push({ ...template, id: `${vnetId}/subnets/pool2`, name: 'pool2', properties: { ...template.properties, addressPrefix: '10.1.8.0/22', networkSecurityGroup: { id: newNsgId } } });
    sandbox.put(vnet);
    const cluster = sandbox.get<ArmManagedCluster>(a.clusterId)!;
    const pools = cluster.properties.agentPoolProfiles!;
    pools.push({ ...pools[0], name: 'userpool2', mode: 'User', vnetSubnetID: `${vnetId}/subnets/pool2` });
    sandbox.put(cluster);

    const outcome = await handle([fleetEvent(OP.poolWrite, `${a.clusterId}/agentPools/userpool2`)], runtimeFor(sandbox, { store }));

    const mine = findingsOf(outcome.report, a.clusterId);
    expect(new Set(mine.map((f) => f.control)).size).toBe(6);
    expect(outcome.report.findings.every((f) => f.resourceId.toLowerCase() === a.clusterId.toLowerCase())).toBe(true);
    const ssh = sshOf(mine);
    expect(ssh.find((f) => f.targetId.toLowerCase() === newNsgId.toLowerCase())).toMatchObject({ action: 'remediated' });
    // The new subnet is also a source for the old NSG (sources = every AKS subnet of the cluster), so
    // NetGuard's existing rule there is widened too.
    expect(ssh.find((f) => f.targetId.toLowerCase() === a.nsgIds[0].toLowerCase())).toMatchObject({ action: 'remediated' });
    const allSources = [...prefixesOfA, '10.1.8.0/22'];
    expect(sshDecisionInSandbox(sandbox, newNsgId, `${vnetId}/subnets/pool2`, allSources)).toBe('Deny');
    expect(sshDecisionInSandbox(sandbox, a.nsgIds[0], a.nodeSubnetIds[0], allSources)).toBe('Deny');
  });
});

describe('at-least-once delivery, order and concurrency', () => {
  test('three copies of one event in a batch make one write; the same id again later makes no request at all', async () => {
    const a = compliant();
    deleteNetGuardRule(a.nsgIds[0]);
    const event = fleetEvent(OP.ruleDelete, ruleIdOf(a.nsgIds[0]));
    const runtime = runtimeFor(sandbox, { store });

    const outcome = await handle([event, structuredClone(event), structuredClone(event)], runtime);
    expect(writeRequests(sandbox)).toHaveLength(1);
    expect(netGuardRulesIn(sandbox, a.nsgIds[0])).toHaveLength(1);
    expect(outcome.log).toHaveLength(3);

    sandbox.resetRequests();
    const again = await handle([structuredClone(event)], runtime);
    expect(sandbox.countRequests()).toBe(0);
    expect(again.log).toEqual([expect.objectContaining({ eventId: event.id, outcome: 'duplicate', armCalls: 0 })]);
    expect(again.report.findings).toEqual([]);
  });

  test('three copies delivered concurrently (separate invocations): one claims the id and reconciles, the others make no call and ask to come back', async () => {
    const a = compliant();
    deleteNetGuardRule(a.nsgIds[0]);
    const event = fleetEvent(OP.ruleDelete, ruleIdOf(a.nsgIds[0]));
    const runtime = runtimeFor(sandbox, { store });
    const outcomes = await Promise.all([0, 1, 2].map(() => handle([structuredClone(event)], runtime)));
    // One attempt at the write in all: the losers never reached Azure (before the ledger claim, all
    // three reconciled and two PUTs were refused with 412).
    expect(writeRequests(sandbox)).toHaveLength(1);
    expect(rulePutsThatTook(sandbox, a.nsgIds[0])).toHaveLength(1);
    expect(netGuardRulesIn(sandbox, a.nsgIds[0])).toHaveLength(1);
    const lines = outcomes.flatMap((o) => o.log);
    expect(lines.filter((l) => l.outcome === 'reconciled')).toHaveLength(1);
    for (const o of outcomes) {
      // Not acknowledged while another delivery still works on it; acknowledged once it is done.
      if (o.log[0].outcome === 'retry') expect(o.retry).toBeDefined();
      if (o.log[0].outcome !== 'reconciled') expect(o.log[0].armCalls).toBe(0);
    }
    expect(outcomes.flatMap((o) => o.report.findings).filter((f) => f.status === 'error')).toEqual([]);
    expect(await store.listApprovals()).toEqual([]);
  });

  test('a delete arriving after the re-create: ends compliant, no write and no extra rule', async () => {
    const a = compliant();
    const nsgId = a.nsgIds[0];
    deleteNetGuardRule(nsgId);
    const runtime = runtimeFor(sandbox, { store });
    // The NSG write of the same change is delivered first and already repairs it…
    await handle([fleetEvent(OP.nsgWrite, nsgId)], runtime);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    sandbox.resetRequests();
    // …then the late rule delete (different id) arrives.
    const late = await handle([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))], runtime);
    expect(onlyFinding(late.report, a.clusterId, 'node-ssh-deny')).toMatchObject({ status: 'compliant', action: 'none' });
    expect(writeRequests(sandbox)).toHaveLength(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('two different events for one NSG processed concurrently: exactly one rule (the loser gets 412, re-reads, finds it fixed)', async () => {
    const a = compliant();
    const nsgId = a.nsgIds[0];
    deleteNetGuardRule(nsgId);
    const runtime = runtimeFor(sandbox, { store });
    const [one, two] = await Promise.all([
      handle([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))], runtime),
      handle([fleetEvent(OP.nsgWrite, nsgId)], runtime),
    ]);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
    // Any other PUT of the rule was refused by its If-None-Match: * condition.
    const refused = sandbox.findRequests((r) => r.method === 'PUT' && r.status === 412);
    expect(sandbox.findRequests({ method: 'PUT' })).toHaveLength(1 + refused.length);
    const ssh = [one, two].map((o) => onlyFinding(o.report, a.clusterId, 'node-ssh-deny'));
    expect(ssh.map((f) => f.status)).not.toContain('error');
    expect(ssh.filter((f) => f.action === 'remediated').length).toBeLessThanOrEqual(1);
    expect(sshDecisionInSandbox(sandbox, nsgId, a.nodeSubnetIds[0], prefixesOfA)).toBe('Deny');
  });
});

describe('NetGuard’s own writes', () => {
  async function ownWriteEvent(principal: string): Promise<Record<string, any>> {
    // Capture the write NetGuard really makes, and turn it into the event Event Grid would send.
    const b = pick(fleet, 'b');
    const changes: Array<{ resourceId: string; operationName: string }> = [];
    const unsubscribe = sandbox.onChange((c) => changes.push(c));
    await handle([fleetEvent(OP.vnetWrite, b.nodeSubnetIds[0].replace(/\/subnets\/[^/]+$/, ''))], runtimeFor(sandbox, { store }));
    unsubscribe();
    expect(changes).toHaveLength(1);
    return fleetEvent(changes[0].operationName, changes[0].resourceId, { caller: { oid: principal, name: 'aks-netguard', upn: '' } });
  }

  test('with AKS_NETGUARD_PRINCIPAL_ID equal to the caller’s object id: skipped with zero requests', async () => {
    const principal = '5e4d3c2b-aaaa-4bbb-8ccc-0d1e2f3a4b5c';
    const event = await ownWriteEvent(principal);
    sandbox.resetRequests();
    const outcome = await handle([event], runtimeFor(sandbox, { store, env: { AKS_NETGUARD_PRINCIPAL_ID: principal.toUpperCase() } }));
    expect(sandbox.countRequests()).toBe(0);
    expect(outcome.log).toEqual([expect.objectContaining({ outcome: 'ignored', reason: 'own-write', armCalls: 0 })]);
  });

  test('without that setting, the event caused by NetGuard’s own write ends as a no-op (zero writes)', async () => {
    const event = await ownWriteEvent('5e4d3c2b-aaaa-4bbb-8ccc-0d1e2f3a4b5c');
    sandbox.resetRequests();
    const outcome = await handle([event], runtimeFor(sandbox, { store }));
    expect(writeRequests(sandbox)).toHaveLength(0);
    expect(outcome.report.findings.length).toBeGreaterThan(0);
    expect(outcome.report.findings.every((f) => f.status === 'compliant')).toBe(true);
  });
});

describe('the flap guard, with an injected clock', () => {
  const start = Date.parse('2026-11-02T09:00:00Z');

  async function deleteAndHandleRepeatedly(times: number, minutesApart: number): Promise<Finding[]> {
    const a = compliant();
    const nsgId = a.nsgIds[0];
    let now = start;
    const clock = () => new Date(now);
    const runtime = runtimeFor(sandbox, { store, clock });
    const out: Finding[] = [];
    for (let i = 0; i < times; i++) {
      now = start + i * minutesApart * 60_000;
      if (netGuardRulesIn(sandbox, nsgId).length) deleteNetGuardRule(nsgId);
      const outcome = await handle([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))], runtime, clock);
      out.push(onlyFinding(outcome.report, a.clusterId, 'node-ssh-deny'));
    }
    return out;
  }

  test('the same rule deleted 4 times within an hour in auto mode: the 4th goes to a person, naming who keeps deleting it', async () => {
    const findings = await deleteAndHandleRepeatedly(4, 10);
    expect(findings.map((f) => f.action)).toEqual(['remediated', 'remediated', 'remediated', 'approval-requested']);
    expect(findings[3].detail).toContain(CHANGER.name);
    expect(findings[3].detail).toMatch(/3 times within 60 minutes/);
    expect(netGuardRulesIn(sandbox, compliant().nsgIds[0])).toHaveLength(0);
    const pending = await store.listApprovals('pending');
    expect(pending).toHaveLength(1);
    expect(pending[0].reason).toContain(CHANGER.name);
  });

  test('the same 4 deletes spread over two hours: each one is simply repaired', async () => {
    const findings = await deleteAndHandleRepeatedly(4, 40);
    expect(findings.map((f) => f.action)).toEqual(['remediated', 'remediated', 'remediated', 'remediated']);
  });
});

describe('failures and resources that are gone', () => {
  test('an event for a cluster that no longer exists: empty findings, no error, no retry', async () => {
    const gone = compliant().clusterId.replace(/aks-compliant$/, 'aks-deleted-yesterday');
    const outcome = await handle([fleetEvent(OP.clusterWrite, gone)], runtimeFor(sandbox, { store }));
    expect(outcome.report.findings).toEqual([]);
    expect(outcome.retry).toBeUndefined();
    expect(outcome.log[0].outcome).toBe('reconciled');
    expect(writeRequests(sandbox)).toHaveLength(0);
  });

  test('an NSG delete after it was detached: nothing behind it, empty findings', async () => {
    const b = pick(fleet, 'b');
    const vnetId = b.nodeSubnetIds[0].replace(/\/subnets\/[^/]+$/, '');
    const vnet = sandbox.get<ArmVirtualNetwork>(vnetId)!;
    vnet.properties.subnets!.forEach((s) => delete s.properties.networkSecurityGroup);
    sandbox.put(vnet);
    sandbox.remove(b.nsgIds[0]);
    const outcome = await handle([fleetEvent(OP.nsgDelete, b.nsgIds[0])], runtimeFor(sandbox, { store }));
    expect(outcome.report.findings).toEqual([]);
    expect(outcome.retry).toBeUndefined();
  });
});

describe('ARM calls per event', () => {
  test('0 for an unrelated event; the numbers for a compliant and a drifted NSG match the log line', async () => {
    const a = compliant();
    const runtime = runtimeFor(sandbox, { store });
    const measure = async (label: string, event: unknown) => {
      sandbox.resetRequests();
      const outcome = await handle([event], runtime);
      const requests = sandbox.countRequests();
      const writes = writeRequests(sandbox).length;
      expect(outcome.log).toHaveLength(1);
      // The log line's count is the gateway's own; it must agree with what the sandbox received.
      expect(outcome.log[0].armCalls).toBe(requests);
      return { label, armCalls: requests, writes, ms: outcome.log[0].ms, outcome };
    };

    const unrelated = await measure('unrelated (published storage-account write)', sampleEvent('eventgrid-schema/subscription_ResourceWriteSuccess.json'));
    expect(unrelated.armCalls).toBe(0);
    expect(unrelated.outcome.log[0].outcome).toBe('ignored');

    // The first routed event of a subscription may read the whole subscription; later ones may be cheaper.
    const firstFine = await measure('compliant NSG, first event of the run (rule write)', fleetEvent(OP.ruleWrite, ruleIdOf(a.nsgIds[0])));
    expect(firstFine.writes).toBe(0);
    expect(firstFine.armCalls).toBeGreaterThan(0);
    const fine = await measure('compliant NSG, next event (rule write)', fleetEvent(OP.ruleWrite, ruleIdOf(a.nsgIds[0])));
    expect(fine.writes).toBe(0);
    expect(fine.armCalls).toBeGreaterThan(0);

    deleteNetGuardRule(a.nsgIds[0]);
    const drifted = await measure('drifted NSG (NetGuard rule deleted → re-created and verified)', fleetEvent(OP.ruleDelete, ruleIdOf(a.nsgIds[0])));
    expect(drifted.writes).toBe(1);
    expect(drifted.armCalls).toBeGreaterThan(fine.armCalls);
    expect(netGuardRulesIn(sandbox, a.nsgIds[0])).toHaveLength(1);

    const clusterFine = await measure('compliant cluster write (all 6 controls)', fleetEvent(OP.clusterWrite, a.clusterId));
    expect(clusterFine.writes).toBe(0);

    console.log(
      'ARM calls and processing time per event on the sandbox (fleet of 9 clusters, one list page each):\n' +
        [unrelated, firstFine, fine, drifted, clusterFine].map((m) => `  ${m.label}: ${m.armCalls} ARM calls (${m.writes} writes), ${m.ms} ms`).join('\n'),
    );
  });
});
