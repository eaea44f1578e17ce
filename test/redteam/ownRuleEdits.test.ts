// Red team: NetGuard's own rule (aks-netguard-deny-node-ssh) edited by a person in ways the safety
// work did not try, repaired by the default auto sweep through the CLI. "Never widen" holds in all of
// them (the gate); these are about the other promise of README "Every fix only restricts access":
// NetGuard keeps what a person added and asks a person before it cuts access beyond inbound TCP/22
// from the AKS subnets to the nodes. Cutting node-to-node traffic takes the cluster down.
import { runCli } from '../../shared/cli/main';
import type { ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg } from '../../shared/net/nsgEvaluator';
import type { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture, netGuardSshDenyRule, nsgFromFixture, vnetWithSubnets } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { onlyFinding, sshDecisionInSandbox, startSandbox } from '../helpers/sandboxEnv';

const SUB = '5a1e5a1e-0000-4000-8000-00000000ed01';
const RG = 'rg-redteam';
const NODE_SUBNET = '10.70.0.0/22';
const NODE_A = '10.70.0.4/32';
const NODE_B = '10.70.0.5/32';
let sandbox: ArmSandbox;

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await sandbox.stop();
});

function seed(rules: ArmSecurityRule[]): { nsgId: string; nodeSubnetId: string; clusterId: string } {
  const nsgId = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/networkSecurityGroups/nodes-nsg`;
  sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'nodes-nsg', securityRules: rules }));
  const vnet = vnetWithSubnets({ subscriptionId: SUB, resourceGroup: RG, name: 'red-vnet', addressPrefixes: ['10.70.0.0/16'], subnets: [{ name: 'nodes', addressPrefix: NODE_SUBNET, nsgId }] });
  sandbox.put(vnet);
  const nodeSubnetId = `${vnet.id}/subnets/nodes`;
  const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-red', nodeSubnetId });
  sandbox.put(cluster);
  return { nsgId, nodeSubnetId, clusterId: cluster.id };
}

async function autoSweep(): Promise<RunReport> {
  let stdout = '';
  const code = await runCli(['sweep', '--json', '--subscription', SUB], {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint },
  });
  expect(code).toBe(0);
  return JSON.parse(stdout) as RunReport;
}

/** Inbound TCP on `port` from one address to another, judged from the sandbox's NSG (not through NetGuard). */
function inbound(nsgId: string, port: number, from: string, to: string): string {
  const nsg = sandbox.get<ArmNetworkSecurityGroup>(nsgId)!;
  return evaluateNsgAccess(rulesOfNsg(nsg), { direction: 'Inbound', protocol: 'Tcp', port, sources: AddressSet.fromPrefixes([from]), destinations: AddressSet.fromPrefixes([to]) }, {
    virtualNetwork: ['10.70.0.0/16'],
  }).decision;
}

test('own rule flipped to Allow-everything by a person: the auto sweep does not turn it into Deny-everything (node-to-node traffic keeps flowing; a person decides)', async () => {
  const flipped = netGuardSshDenyRule(['*'], 100);
  flipped.properties.access = 'Allow';
  flipped.properties.protocol = '*';
  flipped.properties.destinationPortRange = '*';
  flipped.properties.destinationAddressPrefix = '*';
  const { nsgId, nodeSubnetId, clusterId } = seed([flipped]);
  expect(inbound(nsgId, 10250, NODE_B, NODE_A)).toBe('Allow'); // kubelet between nodes
  expect(inbound(nsgId, 443, '198.51.100.7/32', NODE_A)).toBe('Allow');

  const report = await autoSweep();

  // What the cluster's owner notices first: nodes still reach each other, the public service still answers.
  expect(inbound(nsgId, 10250, NODE_B, NODE_A)).toBe('Allow');
  expect(inbound(nsgId, 443, '198.51.100.7/32', NODE_A)).toBe('Allow');
  const finding = onlyFinding(report, clusterId, 'node-ssh-deny');
  expect(finding.action).not.toBe('remediated');
  // Nothing was opened either.
  expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId, ['198.51.100.7/32'])).toBe('Allow');
}, 30_000);

test('own rule flipped to Allow (SSH from anywhere) by a person: changing an Allow waits for a person even in auto mode', async () => {
  const flipped = netGuardSshDenyRule(['*'], 100);
  flipped.properties.access = 'Allow';
  const { nsgId, clusterId } = seed([flipped]);
  const report = await autoSweep();
  const finding = onlyFinding(report, clusterId, 'node-ssh-deny');
  // README: "A fix that would change an existing Allow rule ... waits for approval even in auto mode."
  // Turning the person's Allow into a Deny from `*` cuts SSH from the whole VNet and the internet.
  expect(finding.action).not.toBe('remediated');
  expect(inbound(nsgId, 22, '10.70.200.1/32', NODE_A)).toBe('Allow');
}, 30_000);

test('own rule re-scoped by a person to deny every port from one range: adding the AKS sources back must not cut all node-to-node traffic without a person', async () => {
  const edited = netGuardSshDenyRule(['203.0.113.0/24'], 200);
  edited.properties.destinationPortRange = '*';
  const { nsgId, clusterId } = seed([edited]);
  expect(inbound(nsgId, 10250, NODE_B, NODE_A)).toBe('Allow');

  const report = await autoSweep();

  expect(inbound(nsgId, 10250, NODE_B, NODE_A)).toBe('Allow');
  expect(onlyFinding(report, clusterId, 'node-ssh-deny').action).not.toBe('remediated');
}, 30_000);

// One NSG on the node subnet and on another subnet (a jump host, a Git server): the fix is about SSH
// from the AKS subnets to the nodes (README's control table). It must not also cut SSH from the AKS
// subnets to the other subnet behind the same NSG — not when the rule is created, and not when it is
// moved before an Allow ("if its rule must move before an Allow and would then also cut traffic that
// Allow lets through, a person approves it first").
describe('an NSG shared by the node subnet and another subnet', () => {
  const JUMP_HOST = '10.70.8.4/32';
  const allowSshFromVnet = (): ArmSecurityRule => ({
    name: 'allow-ssh-vnet',
    properties: { protocol: 'Tcp', sourcePortRange: '*', sourceAddressPrefix: 'VirtualNetwork', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 300, direction: 'Inbound' },
  });

  function seedShared(rules: ArmSecurityRule[]): { nsgId: string; nodeSubnetId: string; clusterId: string } {
    const nsgId = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/networkSecurityGroups/shared-nsg`;
    sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'shared-nsg', securityRules: rules }));
    const vnet = vnetWithSubnets({
      subscriptionId: SUB,
      resourceGroup: RG,
      name: 'shared-vnet',
      addressPrefixes: ['10.70.0.0/16'],
      subnets: [
        { name: 'nodes', addressPrefix: NODE_SUBNET, nsgId },
        { name: 'jump', addressPrefix: '10.70.8.0/24', nsgId },
      ],
    });
    sandbox.put(vnet);
    const nodeSubnetId = `${vnet.id}/subnets/nodes`;
    const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-shared', nodeSubnetId });
    sandbox.put(cluster);
    return { nsgId, nodeSubnetId, clusterId: cluster.id };
  }

  test('creating the Deny (before an Allow from the VNet) denies SSH to the nodes and leaves SSH from the nodes to the jump host as it was', async () => {
    const { nsgId, nodeSubnetId, clusterId } = seedShared([allowSshFromVnet()]);
    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');

    const report = await autoSweep();

    expect(onlyFinding(report, clusterId, 'node-ssh-deny').action).toBe('remediated');
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId)).toBe('Deny');
    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');
  }, 30_000);

  test('creating the Deny with only the default rules leaves SSH from the nodes to the jump host as it was', async () => {
    const { nsgId, nodeSubnetId } = seedShared([]);
    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');
    await autoSweep();
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId)).toBe('Deny');
    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');
  }, 30_000);

  test('moving NetGuard’s shadowed Deny (destination VirtualNetwork) before the Allow would cut SSH to the jump host: a person decides', async () => {
    const { nsgId, clusterId } = seedShared([allowSshFromVnet(), netGuardSshDenyRule([NODE_SUBNET], 400)]);
    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');

    const report = await autoSweep();

    expect(inbound(nsgId, 22, NODE_B, JUMP_HOST)).toBe('Allow');
    const finding = onlyFinding(report, clusterId, 'node-ssh-deny');
    expect(finding.action).not.toBe('remediated');
    expect(finding.detail).toMatch(/A person must approve/);
  }, 30_000);
});
