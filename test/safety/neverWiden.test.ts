// "Never widen" end to end, through the CLI sweep against the ARM sandbox: NetGuard's own Deny rule,
// broadened by a person to every source, must not be narrowed back by the default auto sweep, and a
// write that would open anything is refused (finding `error`, nothing written) even when a control
// plans it.
import { runCli } from '../../shared/cli/main';
import type { ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import { nodeSshDeny } from '../../shared/controls/nodeSshDeny';
import type { Control } from '../../shared/controls/types';
import type { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture, netGuardSshDenyRule, nsgFromFixture, vnetWithSubnets } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { onlyFinding, sshDecisionInSandbox, startSandbox, writesTo } from '../helpers/sandboxEnv';
import { OUTSIDER, SUB, RG, armId, seedBroadenedRule } from './scenarios';

let sandbox: ArmSandbox;

async function sweep(extraEnv: Record<string, string> = {}): Promise<{ code: number; report: RunReport; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['sweep', '--json', '--subscription', SUB], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...extraEnv },
  });
  return { code, report: JSON.parse(stdout) as RunReport, stderr };
}

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await sandbox.stop();
});

describe("NetGuard's own rule, broadened by a person", () => {
  test('the default auto sweep keeps SSH from an internet address denied, and keeps what the person added', async () => {
    const { clusterId, nsgId, nodeSubnetId } = seedBroadenedRule(sandbox);
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId, [OUTSIDER])).toBe('Deny');

    const { code, report } = await sweep();
    expect(code).toBe(0);

    // What a user would notice first: SSH from the internet to the nodes is still denied.
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId, [OUTSIDER])).toBe('Deny');
    // The person's broadening is kept: the rule still denies every source.
    const rule = sandbox.get<ArmSecurityRule>(`${nsgId}/securityRules/aks-netguard-deny-node-ssh`)!;
    const sources = [rule.properties.sourceAddressPrefix, ...(rule.properties.sourceAddressPrefixes ?? [])].filter(Boolean);
    expect(sources).toContain('*');
    const finding = onlyFinding(report, clusterId, 'node-ssh-deny');
    expect(finding.status).toBe('drift');
    // Moving the broadened Deny before the Allow at 300 would also cut SSH that Allow gives to the rest
    // of the VNet: that needs a person (without storage, approve acts as report).
    expect(finding.action).toBe('reported');
    expect(finding.detail).toMatch(/allow-ssh-from-vnet/);
  }, 30_000);

  test('when the person only added sources, the auto repair adds back the missing AKS sources and keeps theirs', async () => {
    const nsgId = armId(SUB, RG, 'Microsoft.Network', 'networkSecurityGroups', 'nodes-nsg');
    const edited = netGuardSshDenyRule(['203.0.113.0/24'], 400);
    sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'nodes-nsg', securityRules: [edited] }));
    const vnet = vnetWithSubnets({ subscriptionId: SUB, resourceGroup: RG, name: 'v', addressPrefixes: ['10.61.0.0/16'], subnets: [{ name: 'nodes', addressPrefix: '10.61.0.0/22', nsgId }] });
    sandbox.put(vnet);
    const nodeSubnetId = `${vnet.id}/subnets/nodes`;
    const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-edited', nodeSubnetId });
    sandbox.put(cluster);

    const { report } = await sweep();
    const finding = onlyFinding(report, cluster.id, 'node-ssh-deny');
    expect(finding.action).toBe('remediated');
    const rule = sandbox.get<ArmSecurityRule>(`${nsgId}/securityRules/aks-netguard-deny-node-ssh`)!.properties;
    expect(rule.priority).toBe(400);
    expect(rule.access).toBe('Deny');
    expect(rule.sourceAddressPrefixes).toEqual(expect.arrayContaining(['203.0.113.0/24', '10.61.0.0/22']));
    expect(rule.destinationPortRange).toBe('22');
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId)).toBe('Deny');
  }, 30_000);

  test('when the person also swapped the port, putting the AKS sources back would deny their port from the AKS subnets too: a person decides, and the plan keeps theirs', async () => {
    const nsgId = armId(SUB, RG, 'Microsoft.Network', 'networkSecurityGroups', 'nodes-nsg');
    const edited = netGuardSshDenyRule(['203.0.113.0/24'], 400);
    edited.properties.destinationPortRange = undefined;
    edited.properties.destinationPortRanges = ['3389'];
    sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'nodes-nsg', securityRules: [edited] }));
    const vnet = vnetWithSubnets({ subscriptionId: SUB, resourceGroup: RG, name: 'v', addressPrefixes: ['10.61.0.0/16'], subnets: [{ name: 'nodes', addressPrefix: '10.61.0.0/22', nsgId }] });
    sandbox.put(vnet);
    const nodeSubnetId = `${vnet.id}/subnets/nodes`;
    const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-edited', nodeSubnetId });
    sandbox.put(cluster);

    const { report } = await sweep();
    const finding = onlyFinding(report, cluster.id, 'node-ssh-deny');
    // Without storage, approve acts as report; the plan named in the detail keeps the person's port.
    expect(finding.action).toBe('reported');
    expect(finding.detail).toMatch(/A person must approve/);
    expect(finding.detail).toMatch(/3389/);
    expect(finding.detail).toMatch(/keeping what a person added/);
    expect(sandbox.findRequests((r) => r.method !== 'GET' && r.path.toLowerCase().startsWith(nsgId.toLowerCase()))).toEqual([]);
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId)).toBe('Allow');
  }, 30_000);
});

describe('the write gate', () => {
  test('refuses a widening write even when the control plans it: finding error, detail says why, nothing written', async () => {
    const { clusterId, nsgId, nodeSubnetId } = seedBroadenedRule(sandbox);
    // The old plan: NetGuard's rule rewritten to the AKS sources only, before the Allow at 300.
    const original = nodeSshDeny.plan;
    (nodeSshDeny as Control).plan = (judgement, observation) => {
      const nsg = observation.topology.nsg(judgement.targetId) as ArmNetworkSecurityGroup;
      const existing = nsg.properties.securityRules!.find((r) => r.name === 'aks-netguard-deny-node-ssh')!;
      return {
        kind: 'security-rule',
        nsgId: nsg.id,
        ruleName: existing.name,
        ifMatch: existing.etag,
        before: existing.properties,
        after: { ...netGuardSshDenyRule(['10.60.0.0/22'], 299).properties },
        needsPerson: false,
        summary: 'Update the Deny rule to the AKS sources at 299.',
      };
    };
    try {
      const { code, report } = await sweep();
      expect(code).toBe(0);
      const finding = onlyFinding(report, clusterId, 'node-ssh-deny');
      expect(finding.status).toBe('error');
      expect(finding.action).toBe('none');
      expect(finding.detail).toMatch(/would (allow|open)/i);
      expect(finding.detail).toMatch(/198\.51\.100\.7|0\.0\.0\.0|\*/);
    } finally {
      (nodeSshDeny as Control).plan = original;
    }
    expect(writesTo(sandbox, nsgId)).toEqual([]);
    expect(sshDecisionInSandbox(sandbox, nsgId, nodeSubnetId, [OUTSIDER])).toBe('Deny');
  }, 30_000);
});
