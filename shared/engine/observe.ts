// Observing what one event can affect with the fewest ARM reads: the resource itself is re-read
// live, the rest of the topology comes from the cache the sweeps keep. Anything missing from the
// cache makes the caller fall back to reading the whole subscription (and refilling the cache).
import type { ArmGateway } from '../azure/arm';
import type { ArmManagedCluster, ArmNetworkSecurityGroup } from '../azure/armTypes';
import { ArmError, describeError } from '../azure/errors';
import { StoreError } from '../store/tables';
import { idKey, parentId, subscriptionOf } from '../azure/ids';
import { TopologyIndex, type Inventory } from '../azure/topology';
import {
  inventoryFromCache,
  slimCluster,
  subnetsOfVnet,
  type CachedCluster,
  type CachedSubnet,
  type TopologyCacheStore,
} from '../azure/topologyCache';
import type { ReconcileTarget } from '../events/route';

export interface Observed {
  inventory: Inventory;
  topology: TopologyIndex;
  /** Clusters to judge. */
  clusters: ArmManagedCluster[];
  /** Only node-ssh-deny is concerned (network events). */
  onlyNodeSsh: boolean;
  /** For network events: the NSGs / bare subnets whose judgements are wanted (lower-cased ids). */
  targets?: Set<string>;
}

/** The resource to reconcile and its kind: what an event's route names (ReconcileRoute). */
export interface AffectedResource {
  kind: ReconcileTarget;
  id: string;
}

/**
 * The resource an id concerns for reconciling, for callers that have only an id (the CLI, scripts):
 * a rule → its NSG, an agent pool → its cluster. An event's route already names it (no regex twice).
 */
export function affectedResourceOf(resourceId: string): AffectedResource | undefined {
  const id = resourceId.replace(/\/+$/, '');
  const m = (re: RegExp) => re.exec(id)?.[1];
  const cluster = m(/^(.*\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)/i);
  if (cluster) return { kind: 'cluster', id: cluster };
  const nsg = m(/^(.*\/providers\/microsoft\.network\/networksecuritygroups\/[^/]+)/i);
  if (nsg) return { kind: 'nsg', id: nsg };
  const subnet = m(/^(.*\/providers\/microsoft\.network\/virtualnetworks\/[^/]+\/subnets\/[^/]+)$/i);
  if (subnet) return { kind: 'subnet', id: subnet };
  const vnet = m(/^(.*\/providers\/microsoft\.network\/virtualnetworks\/[^/]+)$/i);
  if (vnet) return { kind: 'vnet', id: vnet };
  return undefined;
}

async function getOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ArmError && err.status === 404) return undefined;
    throw err;
  }
}

/** Loads the cached clusters and every subnet they use; undefined when anything is missing. */
async function clustersWithSubnets(
  cache: TopologyCacheStore,
  clusterIds: string[],
  known: Map<string, CachedSubnet> = new Map(),
): Promise<{ clusters: CachedCluster[]; subnets: Map<string, CachedSubnet> } | undefined> {
  const clusters = await cache.getCachedClusters(clusterIds);
  if (clusters.size !== new Set(clusterIds.map(idKey)).size) return undefined;
  const subnetIds = [...new Set([...clusters.values()].flatMap((c) => c.subnetIds).map(idKey))];
  const missing = subnetIds.filter((id) => !known.has(id));
  const subnets = new Map(known);
  if (missing.length) for (const [k, v] of await cache.getCachedSubnets(missing)) subnets.set(k, v);
  if (subnetIds.some((id) => !subnets.has(id))) return undefined;
  return { clusters: [...clusters.values()], subnets };
}

async function readNsgs(arm: ArmGateway, ids: string[]): Promise<ArmNetworkSecurityGroup[]> {
  const unique = [...new Map(ids.map((id) => [idKey(id), id])).values()];
  const nsgs = await Promise.all(unique.map((id) => getOrUndefined(() => arm.getNsg(id))));
  return nsgs.filter((n): n is ArmNetworkSecurityGroup => !!n);
}

function observed(
  clusters: ArmManagedCluster[],
  subnets: CachedSubnet[],
  nsgs: ArmNetworkSecurityGroup[],
  onlyNodeSsh: boolean,
  targets?: Set<string>,
  neighbours: ArmManagedCluster[] = [],
): Observed {
  const inventory = inventoryFromCache([...clusters, ...neighbours], subnets, nsgs);
  return { inventory, topology: new TopologyIndex(inventory), clusters, onlyNodeSsh, targets };
}

/**
 * The other clusters behind the same NSGs: their subnets are sources of NetGuard's one rule per NSG.
 * undefined when the cache misses any of them.
 */
async function neighboursBehind(
  cache: TopologyCacheStore,
  nsgs: ArmNetworkSecurityGroup[],
  known: { clusters: ArmManagedCluster[]; subnets: Map<string, CachedSubnet> },
): Promise<{ clusters: ArmManagedCluster[]; subnets: Map<string, CachedSubnet> } | undefined> {
  const attached = nsgs.flatMap((n) => (n.properties?.subnets ?? []).map((s) => s.id));
  const rows = await cache.getCachedSubnets(attached);
  const knownIds = new Set(known.clusters.map((c) => idKey(c.id)));
  const others = [...new Set([...rows.values()].flatMap((r) => r.clusterIds).filter((id) => !knownIds.has(idKey(id))))];
  const subnets = new Map(known.subnets);
  for (const [k, v] of rows) if (!subnets.has(k)) subnets.set(k, v);
  if (others.length === 0) return { clusters: [], subnets };
  const loaded = await clustersWithSubnets(cache, others);
  if (!loaded) return undefined;
  for (const [k, v] of loaded.subnets) if (!subnets.has(k)) subnets.set(k, v);
  return { clusters: loaded.clusters.map((c) => c.cluster), subnets };
}

/** undefined: the cache cannot answer; read the whole subscription instead. */
export async function observeFromCache(arm: ArmGateway, cache: TopologyCacheStore, what: AffectedResource): Promise<Observed | undefined> {
  if (!(await cache.hasTopology(subscriptionOf(what.id)))) return undefined;

  if (what.kind === 'cluster') {
    const read = await getOrUndefined(() => arm.getCluster(what.id));
    if (!read) {
      await cache.removeCachedCluster(what.id);
      return observed([], [], [], false);
    }
    const cluster = read.cluster;
    const pools = cluster.properties?.agentPoolProfiles ?? [];
    const named = pools.flatMap((p) => [p.vnetSubnetID, p.podSubnetID]).filter((x): x is string => !!x);
    const cached = (await cache.getCachedClusters([cluster.id])).get(idKey(cluster.id));
    // AKS-managed VNet: the cache knows which subnets those are; a new cluster there needs a full read.
    const subnetIds = pools.some((p) => p.vnetSubnetID) ? named : cached?.subnetIds;
    if (!subnetIds) return undefined;
    const subnets = await cache.getCachedSubnets(subnetIds);
    if (subnets.size !== new Set(subnetIds.map(idKey)).size) return undefined; // a pool in a subnet never seen
    for (const s of subnets.values()) if (!s.clusterIds.some((c) => idKey(c) === idKey(cluster.id))) s.clusterIds.push(cluster.id);
    await cache.putCachedCluster({ cluster: slimCluster(cluster), subnetIds });
    await cache.putCachedSubnets([...subnets.values()]);
    const nsgs = await readNsgs(arm, [...subnets.values()].map((s) => s.nsgId).filter((x): x is string => !!x));
    const around = await neighboursBehind(cache, nsgs, { clusters: [cluster], subnets });
    if (!around) return undefined;
    // The cluster itself goes in as read (whole), for the cluster controls and the write-back.
    return observed([cluster], [...around.subnets.values()], nsgs, false, undefined, around.clusters);
  }

  if (what.kind === 'nsg') {
    const nsg = await getOrUndefined(() => arm.getNsg(what.id));
    if (!nsg) return observed([], [], [], true, new Set([idKey(what.id)])); // an attached NSG cannot be deleted
    // The subnets an NSG guards come back with it. Without that list (no subnet attached, or an ARM
    // front that omits it) the cache cannot tell which clusters are behind it: read everything.
    if (!Array.isArray(nsg.properties?.subnets)) return undefined;
    const attached = nsg.properties.subnets.map((s) => s.id);
    const attachedSubnets = await cache.getCachedSubnets(attached);
    // The live NSG says which subnets it guards: a subnet the cache has never seen, or one it
    // remembers with another NSG, means the cache is stale (a missed event): read everything.
    if (attachedSubnets.size !== new Set(attached.map(idKey)).size) return undefined;
    if ([...attachedSubnets.values()].some((s) => idKey(s.nsgId ?? '') !== idKey(nsg.id))) return undefined;
    const clusterIds = [...attachedSubnets.values()].flatMap((s) => s.clusterIds);
    if (clusterIds.length === 0) return observed([], [], [nsg], true, new Set([idKey(nsg.id)]));
    const loaded = await clustersWithSubnets(cache, clusterIds, attachedSubnets);
    if (!loaded) return undefined;
    return observed(loaded.clusters.map((c) => c.cluster), [...loaded.subnets.values()], [nsg], true, new Set([idKey(nsg.id)]));
  }

  // A subnet or VNet event: re-read the VNet (subnets and address space come with it).
  const vnetId = what.kind === 'subnet' ? parentId(what.id) : what.id;
  const vnet = await getOrUndefined(() => arm.getVnet(vnetId));
  if (!vnet) return undefined;
  const before = await cache.getCachedSubnets((vnet.properties?.subnets ?? []).map((s) => s.id));
  const fresh = subnetsOfVnet(vnet, before).filter((s) => before.has(idKey(s.id)));
  await cache.putCachedSubnets(fresh);
  const concerned = what.kind === 'subnet' ? fresh.filter((s) => idKey(s.id) === idKey(what.id)) : fresh;
  const clusterIds = concerned.flatMap((s) => s.clusterIds);
  if (clusterIds.length === 0) {
    // The cache knows no AKS cluster on it; a subnet it has never seen may be a new node subnet.
    if (what.kind === 'subnet' && !before.has(idKey(what.id))) return undefined;
    return observed([], [], [], true, new Set());
  }
  const loaded = await clustersWithSubnets(cache, clusterIds);
  if (!loaded) return undefined;
  for (const s of fresh) loaded.subnets.set(idKey(s.id), s);
  const targets = new Set(concerned.map((s) => idKey(s.nsgId ?? s.id)));
  const nsgs = await readNsgs(arm, concerned.map((s) => s.nsgId).filter((x): x is string => !!x));
  const scope = loaded.clusters.map((c) => c.cluster);
  const around = await neighboursBehind(cache, nsgs, { clusters: scope, subnets: loaded.subnets });
  if (!around) return undefined;
  return observed(scope, [...around.subnets.values()], nsgs, true, targets, around.clusters);
}

/**
 * What an approved fix is re-judged on, from the cache as a cluster event is (the cluster and its
 * NSGs read live, the topology around them cached), instead of listing the whole subscription on
 * every click. A click may come hours after the request, and a write follows it, so the cache must
 * agree with what was just read: every NSG read must still guard the subnets the cache gives it,
 * and the NSG an approved rule change names must be among them. undefined: read everything.
 */
export async function observeForApproval(
  arm: ArmGateway,
  cache: TopologyCacheStore | undefined,
  approval: { clusterId: string; change: { kind: string; nsgId?: string } },
  warn?: (line: string) => void,
): Promise<Observed | undefined> {
  if (!cache) return undefined;
  let seen: Observed | undefined;
  try {
    seen = await observeFromCache(arm, cache, { kind: 'cluster', id: approval.clusterId });
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    warn?.(`The topology cache could not answer, reading the whole subscription: ${describeError(err)}`);
    return undefined;
  }

  if (!seen || seen.clusters.length === 0) return seen; // no cluster: it is gone (read live, 404)
  const read = new Map(seen.inventory.nsgs.map((n) => [idKey(n.id), n]));
  if (approval.change.kind === 'security-rule' && !read.has(idKey(approval.change.nsgId ?? ''))) return undefined;
  for (const [key, nsg] of read) {
    if (!Array.isArray(nsg.properties?.subnets)) return undefined;
    const guarded = new Set(nsg.properties.subnets.map((s) => idKey(s.id)));
    for (const vnet of seen.inventory.vnets) {
      for (const s of vnet.properties?.subnets ?? []) {
        if (idKey(s.properties?.networkSecurityGroup?.id ?? '') === key && !guarded.has(idKey(s.id))) return undefined;
      }
    }
  }
  return seen;
}
