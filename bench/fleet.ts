// Synthetic fleets for the benchmark and the sweep tests: compliant clusters, each with its own VNet
// (one node subnet) and NSG (NetGuard's deny rule already in place), built from Microsoft's published
// ARM examples through the sandbox's builders. A fleet without drift makes the lower bound of ARM
// calls exact: one page per list, three lists per subscription (and, when the clusters' Kubernetes
// objects are read, one kubeconfig per cluster, then one namespace list and one policy list).
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmVirtualNetwork } from '../shared/azure/armTypes';
import type { ArmSandbox } from '../testkit/armServer';
import { clusterFromFixture, istioServiceMeshProfile, netGuardSshDenyRule, nsgFromFixture, vnetWithSubnets } from '../testkit/fleet';

export interface SyntheticFleet {
  subscriptions: string[];
  clusterIds: string[];
  nsgIds: string[];
  vnetIds: string[];
  /** Clusters + NSGs + VNets. */
  resources: number;
}

/** A subscription id that reads as one (a GUID) and says which it is. */
export function benchSubscriptionId(index: number): string {
  return `00000000-0000-4000-8000-${String(index + 1).padStart(12, '0')}`;
}

interface CompliantClusterResources {
  nsg: ArmNetworkSecurityGroup;
  vnet: ArmVirtualNetwork;
  cluster: ArmManagedCluster;
}

/** One compliant cluster with its VNet and NSG in `subscriptionId` (index i keeps the address ranges apart). */
/**
 * `withKubernetes`: the cluster is Entra-integrated with Azure RBAC and leaves link-local addresses
 * open, so instance-metadata reads its namespaces and NetworkPolicies; otherwise podLinkLocalAccess is
 * None and the cluster alone settles it (no Kubernetes API needed).
 */
function compliantClusterResources(subscriptionId: string, i: number, meshProfile: ReturnType<typeof istioServiceMeshProfile>, withKubernetes = false): CompliantClusterResources {
  const resourceGroup = `rg-bench-${Math.floor(i / 500)}`;
  const name = `aks-${String(i).padStart(5, '0')}`;
  const prefix = `10.${Math.floor(i / 256) % 256}.${i % 256}`;
  const nodePrefix = `${prefix}.0/25`;
  const nsg = nsgFromFixture({ subscriptionId, resourceGroup, name: `${name}-nsg`, location: 'westeurope', securityRules: [netGuardSshDenyRule([nodePrefix], 200)] });
  const vnet = vnetWithSubnets({ subscriptionId, resourceGroup, name: `${name}-vnet`, location: 'westeurope', addressPrefixes: [`${prefix}.0/24`], subnets: [{ name: 'nodes', addressPrefix: nodePrefix, nsgId: nsg.id }] });
  const cluster = clusterFromFixture({
    subscriptionId,
    resourceGroup,
    name,
    location: 'westeurope',
    nodeSubnetId: `${vnet.id}/subnets/nodes`,
    properties: { apiServerAccessProfile: { authorizedIPRanges: ['203.0.113.0/24'] }, serviceMeshProfile: meshProfile },
  });
  const network: NonNullable<ArmManagedCluster['properties']['networkProfile']> = cluster.properties.networkProfile ?? {};
  network.networkPolicy = 'calico';
  network.outboundType = 'userDefinedRouting';
  if (withKubernetes) cluster.properties.aadProfile = { managed: true, enableAzureRBAC: true };
  else network.podLinkLocalAccess = 'None';
  delete network.loadBalancerProfile; // a UDR cluster has no outbound load balancer settings
  cluster.properties.networkProfile = network;
  return { nsg, vnet, cluster };
}

/** Seeds one compliant cluster with its VNet and NSG. */
export function seedCompliantCluster(sandbox: ArmSandbox, subscriptionId: string, i: number, meshProfile = istioServiceMeshProfile()): { clusterId: string; nsgId: string; vnetId: string } {
  const r = compliantClusterResources(subscriptionId, i, meshProfile);
  sandbox.put(r.nsg);
  sandbox.put(r.vnet);
  sandbox.put(r.cluster);
  return { clusterId: r.cluster.id, nsgId: r.nsg.id, vnetId: r.vnet.id };
}

/**
 * About `resources` resources (a third each clusters, NSGs and VNets) spread evenly over
 * `subscriptionCount` subscriptions; every subscription is known to the sandbox, even an empty one.
 */
export function seedCompliantFleet(sandbox: ArmSandbox, resources: number, subscriptionCount: number, kubeApiServer?: string): SyntheticFleet {
  const subscriptions = Array.from({ length: subscriptionCount }, (_, i) => benchSubscriptionId(i));
  for (const s of subscriptions) sandbox.addSubscription(s, `NetGuard bench ${s.slice(-4)}`);
  const clusters = Math.max(1, Math.round(resources / 3));
  const fleet: SyntheticFleet = { subscriptions, clusterIds: [], nsgIds: [], vnetIds: [], resources: 0 };
  const mesh = istioServiceMeshProfile();
  const all = Array.from({ length: clusters }, (_, i) => compliantClusterResources(subscriptions[i % subscriptionCount], i, mesh, !!kubeApiServer));
  // NSGs first: the sandbox answers each put with the NSG's view, which (unindexed) scans every
  // stored resource for subnets pointing at it; stored before the VNets and clusters, the scans stay short.
  for (const r of all) sandbox.put(r.nsg);
  for (const r of all) sandbox.put(r.vnet);
  for (const r of all) sandbox.put(r.cluster);
  // One Kubernetes API stand-in answers for every cluster (each cluster's kubeconfig names it).
  if (kubeApiServer) for (const r of all) sandbox.setKubeApiServer(r.cluster.id, kubeApiServer);
  for (const r of all) {
    fleet.clusterIds.push(r.cluster.id);
    fleet.nsgIds.push(r.nsg.id);
    fleet.vnetIds.push(r.vnet.id);
  }
  fleet.resources = fleet.clusterIds.length + fleet.nsgIds.length + fleet.vnetIds.length;
  return fleet;
}

/** List pages a sweep needs at least: per subscription, each of the three lists takes ⌈n / page⌉ pages (one when empty). */
export function listPagesNeeded(fleet: SyntheticFleet, pageSize: number): number {
  const per = new Map<string, { clusters: number; nsgs: number; vnets: number }>();
  for (const s of fleet.subscriptions) per.set(s.toLowerCase(), { clusters: 0, nsgs: 0, vnets: 0 });
  const count = (ids: string[], key: 'clusters' | 'nsgs' | 'vnets') => {
    for (const id of ids) per.get(id.split('/')[2].toLowerCase())![key]++;
  };
  count(fleet.clusterIds, 'clusters');
  count(fleet.nsgIds, 'nsgs');
  count(fleet.vnetIds, 'vnets');
  const pages = (n: number) => Math.max(1, Math.ceil(n / pageSize));
  let total = 0;
  for (const c of per.values()) total += pages(c.clusters) + pages(c.nsgs) + pages(c.vnets);
  return total;
}


