// Cluster ↔ subnet ↔ NSG topology, computed from an inventory of ARM resources (pure functions).
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSubnet, ArmVirtualNetwork } from './armTypes';
import { idKey, parentId, parseResourceId, sameId } from './ids';

/** What NetGuard has read of one or more subscriptions: every cluster, NSG and VNet (with subnets). */
export interface Inventory {
  clusters: ArmManagedCluster[];
  nsgs: ArmNetworkSecurityGroup[];
  vnets: ArmVirtualNetwork[];
}

export interface SubnetRef {
  id: string;
  /** Address prefixes of the subnet (addressPrefix and addressPrefixes together). */
  prefixes: string[];
  nsgId?: string;
  vnet?: ArmVirtualNetwork;
  /** False when the subnet is named by the cluster but was not found in the inventory. */
  found: boolean;
}

export interface ClusterSubnets {
  nodeSubnets: SubnetRef[];
  podSubnets: SubnetRef[];
  /** True when no pool sets vnetSubnetID: the VNet is the AKS-managed one in the node resource group. */
  managedVnet: boolean;
}

/** Index for repeated look-ups over one inventory. Build once per run. */
export class TopologyIndex {
  private readonly subnets = new Map<string, { subnet: ArmSubnet; vnet: ArmVirtualNetwork }>();
  private readonly nsgs = new Map<string, ArmNetworkSecurityGroup>();
  private readonly clusterSubnetsCache = new Map<string, ClusterSubnets>();

  constructor(readonly inventory: Inventory) {
    for (const vnet of inventory.vnets) {
      for (const subnet of vnet.properties?.subnets ?? []) this.subnets.set(idKey(subnet.id), { subnet, vnet });
    }
    for (const nsg of inventory.nsgs) this.nsgs.set(idKey(nsg.id), nsg);
  }

  nsg(id: string): ArmNetworkSecurityGroup | undefined {
    return this.nsgs.get(idKey(id));
  }

  subnetRef(id: string): SubnetRef {
    const hit = this.subnets.get(idKey(id));
    if (!hit) return { id, prefixes: [], found: false };
    return {
      id: hit.subnet.id,
      prefixes: subnetPrefixes(hit.subnet),
      nsgId: hit.subnet.properties?.networkSecurityGroup?.id,
      vnet: hit.vnet,
      found: true,
    };
  }

  clusterSubnets(cluster: ArmManagedCluster): ClusterSubnets {
    const cached = this.clusterSubnetsCache.get(idKey(cluster.id));
    if (cached) return cached;
    const pools = cluster.properties?.agentPoolProfiles ?? [];
    const nodeIds = uniqueIds(pools.map((p) => p.vnetSubnetID));
    const podIds = uniqueIds(pools.map((p) => p.podSubnetID));
    let result: ClusterSubnets;
    if (nodeIds.length > 0) {
      result = {
        nodeSubnets: nodeIds.map((id) => this.subnetRef(id)),
        podSubnets: podIds.map((id) => this.subnetRef(id)),
        managedVnet: false,
      };
    } else {
      // AKS-managed VNet: every subnet of every VNet in the node resource group carries nodes.
      const nodeRg = cluster.properties?.nodeResourceGroup;
      const sub = parseResourceId(cluster.id).subscriptionId;
      const vnets = nodeRg
        ? this.inventory.vnets.filter((v) => {
            const p = parseResourceId(v.id);
            return p.subscriptionId.toLowerCase() === sub.toLowerCase() && p.resourceGroup?.toLowerCase() === nodeRg.toLowerCase();
          })
        : [];
      result = {
        nodeSubnets: vnets.flatMap((v) => (v.properties?.subnets ?? []).map((s) => this.subnetRef(s.id))),
        podSubnets: podIds.map((id) => this.subnetRef(id)),
        managedVnet: true,
      };
    }
    this.clusterSubnetsCache.set(idKey(cluster.id), result);
    return result;
  }

  /** Every cluster with a node subnet behind this NSG. */
  clustersBehindNsg(nsgId: string): ArmManagedCluster[] {
    return this.inventory.clusters.filter((c) => this.clusterSubnets(c).nodeSubnets.some((s) => sameId(s.nsgId, nsgId)));
  }

  /** Every cluster that uses this subnet as a node or pod subnet. */
  clustersUsingSubnet(subnetId: string): ArmManagedCluster[] {
    return this.inventory.clusters.filter((c) => {
      const s = this.clusterSubnets(c);
      return [...s.nodeSubnets, ...s.podSubnets].some((x) => sameId(x.id, subnetId));
    });
  }

  /** Address space that the VirtualNetwork service tag stands for, seen from this VNet. */
  virtualNetworkSpace(vnet: ArmVirtualNetwork | undefined): string[] {
    if (!vnet) return [];
    const own = vnet.properties?.addressSpace?.addressPrefixes ?? [];
    const peered = (vnet.properties?.virtualNetworkPeerings ?? []).flatMap(
      (p) => p.properties?.remoteAddressSpace?.addressPrefixes ?? [],
    );
    return [...own, ...peered];
  }
}

export function subnetPrefixes(subnet: ArmSubnet): string[] {
  const p = subnet.properties ?? {};
  return [...(p.addressPrefix ? [p.addressPrefix] : []), ...(p.addressPrefixes ?? [])].filter(
    (v, i, a) => a.indexOf(v) === i,
  );
}

export function vnetIdOfSubnet(subnetId: string): string {
  return parentId(subnetId);
}

function uniqueIds(ids: Array<string | undefined>): string[] {
  const seen = new Map<string, string>();
  for (const id of ids) if (id && !seen.has(idKey(id))) seen.set(idKey(id), id);
  return [...seen.values()];
}
