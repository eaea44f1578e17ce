// Wire shapes of the ARM resources NetGuard reads, as the REST API returns them (properties nested).
// NetGuard keeps resources in this form end to end: a cluster is written back exactly as it was
// read, with only the drifted property changed, so no field unknown to an SDK model is ever lost.

export interface ArmRef {
  id: string;
}

export interface ArmResource {
  id: string;
  name: string;
  type?: string;
  location?: string;
  tags?: Record<string, string>;
}

export interface SecurityRuleProperties {
  description?: string;
  protocol: string; // Tcp | Udp | Icmp | Esp | Ah | *
  sourcePortRange?: string;
  sourcePortRanges?: string[];
  destinationPortRange?: string;
  destinationPortRanges?: string[];
  sourceAddressPrefix?: string;
  sourceAddressPrefixes?: string[];
  sourceApplicationSecurityGroups?: ArmRef[];
  destinationAddressPrefix?: string;
  destinationAddressPrefixes?: string[];
  destinationApplicationSecurityGroups?: ArmRef[];
  access: 'Allow' | 'Deny' | string;
  priority: number;
  direction: 'Inbound' | 'Outbound' | string;
  provisioningState?: string;
}

export interface ArmSecurityRule {
  id?: string;
  name: string;
  etag?: string;
  type?: string;
  properties: SecurityRuleProperties;
}

export interface ArmNetworkSecurityGroup extends ArmResource {
  etag?: string;
  properties: {
    securityRules?: ArmSecurityRule[];
    defaultSecurityRules?: ArmSecurityRule[];
    subnets?: ArmRef[];
    networkInterfaces?: ArmRef[];
    provisioningState?: string;
    [key: string]: unknown;
  };
}

export interface ArmSubnet {
  id: string;
  name: string;
  etag?: string;
  type?: string;
  properties: {
    addressPrefix?: string;
    addressPrefixes?: string[];
    networkSecurityGroup?: ArmRef;
    provisioningState?: string;
    [key: string]: unknown;
  };
}

export interface ArmVirtualNetwork extends ArmResource {
  etag?: string;
  properties: {
    addressSpace?: { addressPrefixes?: string[] };
    subnets?: ArmSubnet[];
    virtualNetworkPeerings?: Array<{
      id?: string;
      name?: string;
      properties?: { remoteAddressSpace?: { addressPrefixes?: string[] }; peeringState?: string };
    }>;
    [key: string]: unknown;
  };
}

export interface ArmAgentPoolProfile {
  name: string;
  vnetSubnetID?: string;
  podSubnetID?: string;
  [key: string]: unknown;
}

export interface ArmManagedCluster extends ArmResource {
  /** AKS spells it eTag; the HTTP ETag header carries the same value. */
  eTag?: string;
  properties: {
    provisioningState?: string;
    nodeResourceGroup?: string;
    agentPoolProfiles?: ArmAgentPoolProfile[];
    apiServerAccessProfile?: {
      authorizedIPRanges?: string[];
      enablePrivateCluster?: boolean;
      [key: string]: unknown;
    };
    addonProfiles?: Record<string, { enabled?: boolean; config?: Record<string, string> | null; [key: string]: unknown }>;
    networkProfile?: {
      networkPlugin?: string;
      networkPolicy?: string;
      outboundType?: string;
      [key: string]: unknown;
    };
    serviceMeshProfile?: { mode?: string; [key: string]: unknown };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}
