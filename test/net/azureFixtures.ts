// Loads Microsoft's published ARM example payloads (test/fixtures/azure) as fresh, mutable objects,
// so each test can vary them in code without touching the files.
import { readFileSync } from 'fs';
import * as path from 'path';
import type {
  ArmManagedCluster,
  ArmNetworkSecurityGroup,
  ArmSecurityRule,
  ArmSubnet,
  ArmVirtualNetwork,
  SecurityRuleProperties,
} from '../../shared/azure/armTypes';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function body<T>(relative: string): T {
  const doc = JSON.parse(readFileSync(path.join(FIXTURES, relative), 'utf8'));
  return doc.responses['200'].body as T;
}

export const loadNsg = () => body<ArmNetworkSecurityGroup>('arm-network-2026-01-01/NetworkSecurityGroupGet.json');
export const loadVnet = () => body<ArmVirtualNetwork>('arm-network-2026-01-01/VirtualNetworkGet.json');
export const loadSubnet = () => body<ArmSubnet>('arm-network-2026-01-01/SubnetGet.json');
export const loadCluster = () => body<ArmManagedCluster>('arm-aks-2026-01-01/ManagedClustersGet.json');

/** A custom rule in the NSG's id space; properties default to an inbound TCP/22 rule from anywhere. */
export function securityRule(
  nsg: ArmNetworkSecurityGroup,
  name: string,
  priority: number,
  access: 'Allow' | 'Deny',
  props: Partial<SecurityRuleProperties> = {},
): ArmSecurityRule {
  const properties: SecurityRuleProperties = {
    protocol: 'Tcp',
    sourcePortRange: '*',
    destinationPortRange: '22',
    sourceAddressPrefix: '*',
    destinationAddressPrefix: '*',
    access,
    priority,
    direction: 'Inbound',
    provisioningState: 'Succeeded',
    ...props,
  };
  // ARM sets either the singular or the plural field of a pair, never both.
  for (const [one, many] of [
    ['sourceAddressPrefix', 'sourceAddressPrefixes'],
    ['destinationAddressPrefix', 'destinationAddressPrefixes'],
    ['sourcePortRange', 'sourcePortRanges'],
    ['destinationPortRange', 'destinationPortRanges'],
  ] as const) {
    if (many in props && !(one in props)) delete properties[one];
  }
  return {
    name,
    id: `${nsg.id}/securityRules/${name}`,
    etag: `W/"etag-${name}-${priority}"`,
    type: 'Microsoft.Network/networkSecurityGroups/securityRules',
    properties,
  };
}
