// Layouts the safety tests share, seeded into the ARM sandbox through the fixture builders.
import type { ArmSecurityRule } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture, netGuardSshDenyRule, nsgFromFixture, securityRule, vnetWithSubnets } from '../../testkit/fleet';

export const SUB = '5a1e5a1e-0000-4000-8000-000000000009';
export const RG = 'rg-widen';
/** TEST-NET-2: an address on the internet. */
export const OUTSIDER = '198.51.100.7/32';

export const armId = (sub: string, rg: string, provider: string, type: string, name: string) => `/subscriptions/${sub}/resourceGroups/${rg}/providers/${provider}/${type}/${name}`;

/**
 * The layout: an Allow for SSH from the VNet at 300 (which also admits the AKS subnet, so the
 * NSG is in drift), NetGuard's rule broadened by a person to source `*` at 400, and an Allow from `*`
 * at 500 behind it.
 */
export function seedBroadenedRule(sandbox: ArmSandbox): { clusterId: string; nsgId: string; nodeSubnetId: string } {
  const nsgId = armId(SUB, RG, 'Microsoft.Network', 'networkSecurityGroups', 'nodes-nsg');
  const broadened = netGuardSshDenyRule(['*'], 400);
  const rules: ArmSecurityRule[] = [
    securityRule('allow-ssh-from-vnet', {
      protocol: 'Tcp',
      sourceAddressPrefix: '10.60.0.0/16',
      destinationAddressPrefix: '*',
      destinationPortRange: '22',
      access: 'Allow',
      priority: 300,
      direction: 'Inbound',
    }),
    broadened,
    securityRule('allow-ssh-from-anywhere', {
      protocol: 'Tcp',
      sourceAddressPrefix: '*',
      destinationAddressPrefix: '*',
      destinationPortRange: '22',
      access: 'Allow',
      priority: 500,
      direction: 'Inbound',
    }),
  ];
  sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'nodes-nsg', securityRules: rules }));
  const vnet = vnetWithSubnets({
    subscriptionId: SUB,
    resourceGroup: RG,
    name: 'widen-vnet',
    addressPrefixes: ['10.60.0.0/16'],
    subnets: [{ name: 'nodes', addressPrefix: '10.60.0.0/22', nsgId }],
  });
  sandbox.put(vnet);
  const nodeSubnetId = `${vnet.id}/subnets/nodes`;
  const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-widen', nodeSubnetId });
  sandbox.put(cluster);
  return { clusterId: cluster.id, nsgId, nodeSubnetId };
}

