// The event path with the topology cache: after one sweep, an event about an NSG, a subnet or a
// cluster is judged from one or two live reads plus the cached topology, and reaches the same
// verdicts as a full read of the subscription.
import { Engine } from '../../shared/engine/engine';
import type { ArmNetworkSecurityGroup } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, seedDriftedFleet, vnetWithSubnets, clusterFromFixture, type SeededCluster, type SeededFleet } from '../../testkit/fleet';
import type { TableStateStore } from '../../shared/store/tables';
import type { Finding } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { freshStore, gatewayFor, settingsFor, startSandbox } from '../helpers/sandboxEnv';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let store: TableStateStore;

afterAll(async () => {
  await sandbox?.stop();
});

function rig(withCache: boolean) {
  const arm = gatewayFor(sandbox);
  const engine = new Engine({ arm, settings: settingsFor(sandbox), store, topologyCache: withCache ? store : undefined });
  return { arm, engine };
}

const seeded = (label: string): SeededCluster => fleet.clusters.find((c) => c.label === label)!;
const verdicts = (findings: Finding[]) =>
  findings.map((f) => `${f.control} ${f.resourceId.toLowerCase()} ${f.targetId.toLowerCase()} ${f.status}`).sort();

beforeEach(async () => {
  await sandbox?.stop();
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
  store = freshStore(azurite.connectionString);
  await rig(true).engine.sweep([fleet.subscriptionId]); // fills the cache (and fixes what auto fixes)
  sandbox.resetRequests();
});

test('a compliant NSG event costs one ARM read and gives the verdict of a full read', async () => {
  const nsgId = seeded('a').nsgIds[0];
  const cached = rig(true);
  const fast = await cached.engine.reconcile(nsgId);
  expect(cached.arm.calls.total).toBe(1);
  const full = await rig(false).engine.reconcile(nsgId);
  expect(verdicts(fast.findings)).toEqual(verdicts(full.findings));
  expect(fast.findings).toHaveLength(1);
  expect(fast.findings[0]).toMatchObject({ control: 'node-ssh-deny', status: 'compliant' });
});

test('a deleted NetGuard rule is re-created from the cache path in at most four calls', async () => {
  const nsgId = seeded('a').nsgIds[0];
  expect(sandbox.remove(`${nsgId}/securityRules/${NETGUARD_SSH_RULE_NAME}`)).toBe(true);
  const { arm, engine } = rig(true);
  const report = await engine.reconcile(nsgId);
  expect(report.findings[0]).toMatchObject({ status: 'drift', action: 'remediated' });
  // read the NSG, write the rule, poll its completion, verify by re-reading
  expect(arm.calls.total).toBeLessThanOrEqual(4);
  const rule = sandbox.get<ArmNetworkSecurityGroup>(nsgId)?.properties.securityRules?.find((r) => r.name === NETGUARD_SSH_RULE_NAME);
  expect(rule?.properties.access).toBe('Deny');
});

test('a subnet event that detaches the NSG is judged from the VNet read: drift on the bare subnet', async () => {
  const a = seeded('a');
  const subnetId = a.nodeSubnetIds[0];
  const subnet = sandbox.get<{ id: string; name: string; properties: Record<string, unknown> }>(subnetId)!;
  delete subnet.properties.networkSecurityGroup;
  sandbox.put(subnet);
  sandbox.resetRequests();
  const { arm, engine } = rig(true);
  const report = await engine.reconcile(subnetId);
  expect(arm.calls.total).toBeLessThanOrEqual(2);
  expect(report.findings).toHaveLength(1);
  expect(report.findings[0]).toMatchObject({ control: 'node-ssh-deny', status: 'drift', action: 'reported' });
  expect(report.findings[0].targetId.toLowerCase()).toBe(subnetId.toLowerCase());
});

test('a cluster event judges every control with the cluster and its NSG read live', async () => {
  const a = seeded('a');
  const cached = rig(true);
  const fast = await cached.engine.reconcile(a.clusterId);
  expect(cached.arm.calls.total).toBe(1 + a.nsgIds.length);
  const full = await rig(false).engine.reconcile(a.clusterId);
  expect(verdicts(fast.findings)).toEqual(verdicts(full.findings));
  expect(fast.findings.map((f) => f.control).sort()).toEqual(
    ['api-authorized-ranges', 'egress-lockdown', 'http-application-routing', 'network-policy', 'node-ssh-deny', 'service-mesh'].sort(),
  );
});

test("NetGuard's rule keeps the subnets of every cluster behind the NSG when one cluster's event repairs it", async () => {
  // A second cluster joins (a)'s node subnet NSG through a subnet of its own in the same VNet.
  const a = seeded('a');
  const nsgId = a.nsgIds[0];
  const vnetId = a.nodeSubnetIds[0].split('/subnets/')[0];
  const vnet = sandbox.get<{ id: string; name: string; properties: { subnets: unknown[] } }>(vnetId)!;
  const rg = vnetId.split('/')[4];
  const extra = vnetWithSubnets({
    subscriptionId: fleet.subscriptionId,
    resourceGroup: rg,
    name: vnet.name,
    addressPrefixes: (sandbox.get<any>(vnetId).properties.addressSpace.addressPrefixes as string[]),
    subnets: [{ name: 'second-nodes', addressPrefix: '10.1.200.0/24', nsgId }],
  } as never);
  const second = extra.properties.subnets![0];
  sandbox.put({ ...second, id: `${vnetId}/subnets/second-nodes` });
  sandbox.put(clusterFromFixture({ subscriptionId: fleet.subscriptionId, resourceGroup: rg, name: 'aks-second', nodeSubnetId: `${vnetId}/subnets/second-nodes` } as never));
  await rig(true).engine.sweep([fleet.subscriptionId]); // the next sweep learns the new topology
  sandbox.remove(`${nsgId}/securityRules/${NETGUARD_SSH_RULE_NAME}`);
  sandbox.resetRequests();

  const { engine } = rig(true);
  const report = await engine.reconcile(a.clusterId);
  expect(report.findings.find((f) => f.control === 'node-ssh-deny')).toMatchObject({ action: 'remediated' });
  const rule = sandbox.get<ArmNetworkSecurityGroup>(nsgId)?.properties.securityRules?.find((r) => r.name === NETGUARD_SSH_RULE_NAME);
  expect(rule?.properties.sourceAddressPrefixes).toEqual(expect.arrayContaining(['10.1.200.0/24']));
});

test('an event about a subnet the cache has never seen falls back to reading the whole subscription', async () => {
  const a = seeded('a');
  const vnetId = a.nodeSubnetIds[0].split('/subnets/')[0];
  sandbox.put({ id: `${vnetId}/subnets/brand-new`, name: 'brand-new', properties: { addressPrefix: '10.1.250.0/24' } });
  sandbox.resetRequests();
  const { arm, engine } = rig(true);
  const report = await engine.reconcile(`${vnetId}/subnets/brand-new`);
  expect(report.findings).toHaveLength(0); // no cluster uses it
  expect(arm.calls.total).toBeGreaterThanOrEqual(3); // the three subscription lists
});

test('an NSG read without its subnets list (as some ARM fronts answer) is judged from a full read, not guessed', async () => {
  // A stand-in that does not fill in NSG → subnet back-references: the sandbox answer, minus `subnets`.
  const nsgId = seeded('a').nsgIds[0];
  sandbox.remove(`${nsgId}/securityRules/${NETGUARD_SSH_RULE_NAME}`);
  const { arm, engine } = rig(true);
  const original = arm.getNsg.bind(arm);
  arm.getNsg = async (id: string) => {
    const nsg = await original(id);
    delete (nsg.properties as { subnets?: unknown }).subnets;
    return nsg;
  };
  const report = await engine.reconcile(nsgId);
  expect(report.findings).toHaveLength(1);
  expect(report.findings[0]).toMatchObject({ control: 'node-ssh-deny', status: 'drift', action: 'remediated' });
});
