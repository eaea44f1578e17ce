// The cluster ↔ subnet ↔ NSG topology, kept between runs (in Azure Tables) so that an event about
// one NSG, subnet or cluster needs one or two ARM reads instead of listing the whole subscription.
// Refreshed by every sweep and by cluster, subnet and VNet events. Pure conversions live here.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmVirtualNetwork } from './armTypes';
import { idKey, parentId } from './ids';
import { subnetPrefixes, TopologyIndex, type Inventory } from './topology';

/** What NetGuard remembers of a subnet that carries (or could carry) AKS nodes or pods. */
export interface CachedSubnet {
  id: string;
  vnetId: string;
  prefixes: string[];
  nsgId?: string;
  /** Own and peered address space of the VNet: what the VirtualNetwork service tag means there. */
  vnetSpace: string[];
  /** Clusters that use the subnet for nodes or pods. */
  clusterIds: string[];
}

/** A cluster reduced to what the topology needs (tags count for modes and exemptions). */
export interface CachedCluster {
  cluster: ArmManagedCluster;
  /** Every node and pod subnet, resolved (on an AKS-managed VNet, the subnets of that VNet). */
  subnetIds: string[];
}

export function slimCluster(c: ArmManagedCluster): ArmManagedCluster {
  return {
    id: c.id,
    name: c.name,
    type: c.type,
    location: c.location,
    tags: c.tags,
    properties: {
      nodeResourceGroup: c.properties?.nodeResourceGroup,
      agentPoolProfiles: (c.properties?.agentPoolProfiles ?? []).map((p) => ({
        name: p.name,
        vnetSubnetID: p.vnetSubnetID,
        podSubnetID: p.podSubnetID,
      })),
    },
  };
}

/** The cache entries of an inventory: every AKS cluster and every subnet (with the clusters using it). */
export function cacheEntriesOf(inventory: Inventory): { clusters: CachedCluster[]; subnets: CachedSubnet[] } {
  const topology = new TopologyIndex(inventory);
  const subnets = new Map<string, CachedSubnet>();
  const clusters: CachedCluster[] = [];
  for (const cluster of inventory.clusters) {
    const s = topology.clusterSubnets(cluster);
    const refs = [...s.nodeSubnets, ...s.podSubnets].filter((r) => r.found);
    for (const ref of refs) {
      const key = idKey(ref.id);
      const entry = subnets.get(key) ?? {
        id: ref.id,
        vnetId: parentId(ref.id),
        prefixes: ref.prefixes,
        nsgId: ref.nsgId,
        vnetSpace: topology.virtualNetworkSpace(ref.vnet),
        clusterIds: [],
      };
      if (!entry.clusterIds.some((id) => idKey(id) === idKey(cluster.id))) entry.clusterIds.push(cluster.id);
      subnets.set(key, entry);
    }
    clusters.push({ cluster: slimCluster(cluster), subnetIds: refs.map((r) => r.id) });
  }
  // Every other subnet too: an NSG event then knows for sure that no cluster is behind a subnet.
  for (const vnet of inventory.vnets) {
    for (const entry of subnetsOfVnet(vnet, subnets)) if (!subnets.has(idKey(entry.id))) subnets.set(idKey(entry.id), entry);
  }
  return { clusters, subnets: [...subnets.values()] };
}

/** Cache entries for the subnets of a freshly read VNet, keeping what is known of their clusters. */
export function subnetsOfVnet(vnet: ArmVirtualNetwork, known: Map<string, CachedSubnet>): CachedSubnet[] {
  const space = new TopologyIndex({ clusters: [], nsgs: [], vnets: [vnet] }).virtualNetworkSpace(vnet);
  return (vnet.properties?.subnets ?? []).map((s) => ({
    id: s.id,
    vnetId: vnet.id,
    prefixes: subnetPrefixes(s),
    nsgId: s.properties?.networkSecurityGroup?.id,
    vnetSpace: space,
    clusterIds: known.get(idKey(s.id))?.clusterIds ?? [],
  }));
}

/**
 * A partial inventory rebuilt from the cache plus the resources just read: enough to judge
 * node-ssh-deny of the given clusters on the given NSGs (VNets are synthesized from subnet entries).
 */
export function inventoryFromCache(clusters: ArmManagedCluster[], subnets: CachedSubnet[], nsgs: ArmNetworkSecurityGroup[]): Inventory {
  const vnets = new Map<string, ArmVirtualNetwork>();
  for (const s of subnets) {
    const key = idKey(s.vnetId);
    let vnet = vnets.get(key);
    if (!vnet) {
      vnet = {
        id: s.vnetId,
        name: s.vnetId.split('/').pop() ?? s.vnetId,
        properties: { addressSpace: { addressPrefixes: s.vnetSpace }, subnets: [] },
      };
      vnets.set(key, vnet);
    }
    vnet.properties.subnets!.push({
      id: s.id,
      name: s.id.split('/').pop() ?? s.id,
      properties: { addressPrefixes: s.prefixes, ...(s.nsgId ? { networkSecurityGroup: { id: s.nsgId } } : {}) },
    });
  }
  return { clusters, nsgs, vnets: [...vnets.values()] };
}

/** Where the cache lives (implemented by the Azure Tables store). */
export interface TopologyCacheStore {
  /** Replaces what is cached for a subscription (after a sweep read it whole). */
  replaceTopology(subscriptionId: string, entries: { clusters: CachedCluster[]; subnets: CachedSubnet[] }, at: Date): Promise<void>;
  /** Whether a sweep has filled the cache for the subscription. */
  hasTopology(subscriptionId: string): Promise<boolean>;
  getCachedClusters(ids: string[]): Promise<Map<string, CachedCluster>>;
  getCachedSubnets(ids: string[]): Promise<Map<string, CachedSubnet>>;
  putCachedCluster(entry: CachedCluster): Promise<void>;
  putCachedSubnets(entries: CachedSubnet[]): Promise<void>;
  removeCachedCluster(id: string): Promise<void>;
}
