// The one list of ARM operations NetGuard reacts to. The Event Grid routing and the infra's
// advanced filter on data.operationName are both derived from it.

export const HANDLED_EVENT_TYPES = [
  'Microsoft.Resources.ResourceWriteSuccess',
  'Microsoft.Resources.ResourceDeleteSuccess',
] as const;

export type RoutedKind = 'nsg' | 'security-rule' | 'vnet' | 'subnet' | 'cluster' | 'agent-pool';

export const ROUTED_OPERATIONS: ReadonlyArray<{ operation: string; kind: RoutedKind }> = [
  { operation: 'Microsoft.Network/networkSecurityGroups/write', kind: 'nsg' },
  { operation: 'Microsoft.Network/networkSecurityGroups/delete', kind: 'nsg' },
  { operation: 'Microsoft.Network/networkSecurityGroups/securityRules/write', kind: 'security-rule' },
  { operation: 'Microsoft.Network/networkSecurityGroups/securityRules/delete', kind: 'security-rule' },
  { operation: 'Microsoft.Network/virtualNetworks/write', kind: 'vnet' },
  { operation: 'Microsoft.Network/virtualNetworks/subnets/write', kind: 'subnet' },
  { operation: 'Microsoft.ContainerService/managedClusters/write', kind: 'cluster' },
  { operation: 'Microsoft.ContainerService/managedClusters/agentPools/write', kind: 'agent-pool' },
];

const BY_OPERATION = new Map(ROUTED_OPERATIONS.map((o) => [o.operation.toLowerCase(), o.kind]));

/** The routed kind of an ARM operation name (case-insensitive), or undefined when NetGuard ignores it. */
export function routedKindOf(operationName: string | undefined): RoutedKind | undefined {
  return operationName ? BY_OPERATION.get(operationName.toLowerCase()) : undefined;
}
