// Realistic sandbox resources built from Microsoft's published ARM examples (copies of
// test/fixtures/azure carried by the kit, see samples.ts), varied in code, and a drifted demo fleet
// with one of each kind of drift NetGuard handles.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmSubnet, ArmVirtualNetwork, SecurityRuleProperties } from '../shared/azure/armTypes';
import type { ControlId } from '../shared/types';
import type { ArmSandbox } from './armServer';
import type { KubeSandbox } from './kubeServer';
import { publishedSample, type PublishedSample } from './samples';

/** Same names as the controls use; repeated here so the sandbox does not depend on the engine. */
export const NETGUARD_SSH_RULE_NAME = 'aks-netguard-deny-node-ssh';
export const NETGUARD_EXEMPT_TAG = 'aks-netguard-exempt';

interface ArmExample<T> {
  parameters: Record<string, unknown>;
  responses: Record<string, { body: T }>;
}

function exampleBody<T>(name: PublishedSample): T {
  return publishedSample<ArmExample<T>>(name).responses['200'].body;
}

/** Replaces every occurrence of the fixture's id prefixes in a resource (ids nest in many places). */
function rebase<T>(resource: T, replacements: Array<[string, string]>): T {
  let text = JSON.stringify(resource);
  for (const [from, to] of replacements) text = text.split(from).join(to);
  return JSON.parse(text) as T;
}

function armId(subscriptionId: string, resourceGroup: string, provider: string, ...typeNamePairs: string[]): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${provider}/${typeNamePairs.join('/')}`;
}

// ---------------------------------------------------------------- managed clusters

export interface ClusterSpec {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  /** Default: the fixture's location ("location1"). */
  location?: string;
  /** BYO VNet: the first node pool's vnetSubnetID (the network plugin becomes Azure CNI). */
  nodeSubnetId?: string;
  podSubnetId?: string;
  /** Merged over the fixture's tags. */
  tags?: Record<string, string>;
  /** Shallow-merged over the fixture's properties. */
  properties?: Partial<ArmManagedCluster['properties']>;
}

/** A managed cluster based on arm-aks-2026-01-01/ManagedClustersGet.json. */
export function clusterFromFixture(spec: ClusterSpec): ArmManagedCluster {
  const published = exampleBody<ArmManagedCluster>('arm-aks-2026-01-01/ManagedClustersGet.json');
  const location = spec.location ?? published.location ?? 'location1';
  const nodeResourceGroup = `MC_${spec.resourceGroup}_${spec.name}_${location}`;
  const cluster = rebase(published, [
    ['/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MC_rg1/', `/subscriptions/${spec.subscriptionId}/resourceGroups/${nodeResourceGroup}/`],
    ['/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/', `/subscriptions/${spec.subscriptionId}/resourceGroups/${spec.resourceGroup}/`],
  ]);
  cluster.id = armId(spec.subscriptionId, spec.resourceGroup, 'Microsoft.ContainerService', 'managedClusters', spec.name);
  cluster.name = spec.name;
  cluster.location = location;
  cluster.tags = { ...(cluster.tags ?? {}), ...(spec.tags ?? {}) };
  const props = cluster.properties;
  props.nodeResourceGroup = nodeResourceGroup;
  props.dnsPrefix = spec.name;
  props.fqdn = `${spec.name}-abcd1234.hcp.${location}.azmk8s.io`;
  props.azurePortalFQDN = `${spec.name}-abcd1234.portal.hcp.${location}.azmk8s.io`;
  const pool = props.agentPoolProfiles?.[0];
  if (pool && spec.nodeSubnetId) {
    pool.vnetSubnetID = spec.nodeSubnetId;
    if (spec.podSubnetId) pool.podSubnetID = spec.podSubnetId;
    // kubenet's pod CIDR does not apply once pods take addresses from a subnet (Azure CNI).
    const network = props.networkProfile ?? {};
    network.networkPlugin = 'azure';
    delete network.podCidr;
    delete network.podCidrs;
    props.networkProfile = network;
  } else if (pool && spec.podSubnetId) {
    pool.podSubnetID = spec.podSubnetId;
  }
  Object.assign(props, spec.properties ?? {});
  return cluster;
}

/** The Istio add-on profile as published in ManagedClustersCreate_AzureServiceMesh.json. */
export function istioServiceMeshProfile(): NonNullable<ArmManagedCluster['properties']['serviceMeshProfile']> {
  const body = exampleBody<ArmManagedCluster>('arm-aks-2026-01-01/ManagedClustersCreate_AzureServiceMesh.json');
  return body.properties.serviceMeshProfile!;
}

/** The add-on profiles (omsagent off, httpApplicationRouting on) of the Cortex XSOAR cluster list sample. */
export function httpApplicationRoutingAddons(): NonNullable<ArmManagedCluster['properties']['addonProfiles']> {
  const list = publishedSample<{ value: ArmManagedCluster[] }>('third-party/demisto-content_AzureKubernetesServices_clusters_list_response.json');
  return list.value[0].properties.addonProfiles!;
}

// ---------------------------------------------------------------- network

export interface NsgSpec {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  /** Default: the fixture's ("westus"). */
  location?: string;
  /** Replaces the fixture's own rule list (rule1, Allow port 80) when given; [] for default rules only. */
  securityRules?: ArmSecurityRule[];
  tags?: Record<string, string>;
}

/** An NSG based on arm-network-2026-01-01/NetworkSecurityGroupGet.json (six default rules included). */
export function nsgFromFixture(spec: NsgSpec): ArmNetworkSecurityGroup {
  const published = exampleBody<ArmNetworkSecurityGroup>('arm-network-2026-01-01/NetworkSecurityGroupGet.json');
  const id = armId(spec.subscriptionId, spec.resourceGroup, 'Microsoft.Network', 'networkSecurityGroups', spec.name);
  const nsg = rebase(published, [[published.id, id]]);
  nsg.name = spec.name;
  if (spec.location) nsg.location = spec.location;
  if (spec.tags) nsg.tags = { ...spec.tags };
  if (spec.securityRules) {
    nsg.properties.securityRules = spec.securityRules.map((r) => ({ ...r, id: `${id}/securityRules/${r.name}`, properties: { ...r.properties } }));
  }
  return nsg;
}

/** A security rule in wire form (no id: the sandbox or the NSG builder gives it one). */
export function securityRule(name: string, properties: SecurityRuleProperties): ArmSecurityRule {
  return { name, properties: { sourcePortRange: '*', ...properties } };
}

/** NetGuard's own rule as the node-ssh-deny control writes it. */
export function netGuardSshDenyRule(sourcePrefixes: string[], priority: number): ArmSecurityRule {
  return securityRule(NETGUARD_SSH_RULE_NAME, {
    description: 'AKS NetGuard: deny SSH to AKS nodes from the cluster subnets',
    protocol: 'Tcp',
    sourcePortRange: '*',
    ...(sourcePrefixes.length === 1 ? { sourceAddressPrefix: sourcePrefixes[0] } : { sourceAddressPrefixes: [...sourcePrefixes] }),
    destinationAddressPrefix: 'VirtualNetwork',
    destinationPortRange: '22',
    access: 'Deny',
    priority,
    direction: 'Inbound',
  });
}

export interface SubnetSpec {
  name: string;
  addressPrefix: string;
  nsgId?: string;
}

export interface VnetSpec {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location?: string;
  /** Default: the fixture's 10.0.0.0/16. */
  addressPrefixes?: string[];
  subnets: SubnetSpec[];
  tags?: Record<string, string>;
}

/** A VNet based on VirtualNetworkGet.json whose subnets are shaped like SubnetGet.json. */
export function vnetWithSubnets(spec: VnetSpec): ArmVirtualNetwork {
  const published = exampleBody<ArmVirtualNetwork>('arm-network-2026-01-01/VirtualNetworkGet.json');
  const id = armId(spec.subscriptionId, spec.resourceGroup, 'Microsoft.Network', 'virtualNetworks', spec.name);
  const vnet = rebase(published, [
    [published.id, id],
    ['/subscriptions/subid/resourceGroups/rg1/', `/subscriptions/${spec.subscriptionId}/resourceGroups/${spec.resourceGroup}/`],
  ]);
  vnet.name = spec.name;
  if (spec.location) vnet.location = spec.location;
  if (spec.tags) vnet.tags = { ...spec.tags };
  if (spec.addressPrefixes) vnet.properties.addressSpace = { addressPrefixes: [...spec.addressPrefixes] };
  vnet.properties.subnets = spec.subnets.map((s) => subnetFromFixture(`${id}/subnets/${s.name}`, s.addressPrefix, s.nsgId));
  return vnet;
}

/** A subnet shaped like SubnetGet.json. */
export function subnetFromFixture(subnetId: string, addressPrefix: string, nsgId?: string): ArmSubnet {
  const published = exampleBody<ArmSubnet>('arm-network-2026-01-01/SubnetGet.json');
  const subnet: ArmSubnet = { ...published, id: subnetId, name: subnetId.split('/').pop()!, properties: { ...published.properties, addressPrefix } };
  if (nsgId) subnet.properties.networkSecurityGroup = { id: nsgId };
  return subnet;
}

// ---------------------------------------------------------------- the drifted demo fleet

export interface SeededCluster {
  /** "a" … "i" (and "j" … "m" with Kubernetes stand-ins), as in the list of drift kinds. */
  label: string;
  clusterId: string;
  nodeSubnetIds: string[];
  /** NSGs on the node subnets (none for a bare subnet). */
  nsgIds: string[];
  /** What is wrong, in one sentence (or why it is the compliant reference). */
  problem: string;
  /** Controls that are not compliant, before exemptions are applied. */
  driftedControls: ControlId[];
  /** Value of the aks-netguard-exempt tag, when the cluster has one. */
  exempt?: string;
  /** True when the only possible fix changes someone's access and so needs a person. */
  needsPerson?: boolean;
}

export interface SeededFleet {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  clusters: SeededCluster[];
}

export interface FleetOptions {
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  /**
   * Kubernetes API stand-ins (one per cluster: namespaces are per API server) for the clusters that
   * show each instance-metadata case (j–m). Without them the fleet has no such cluster and every
   * cluster is compliant through podLinkLocalAccess None, so nothing needs a Kubernetes API.
   */
  kube?: { openNamespace: KubeSandbox; admitsImds: KubeSandbox };
}

/** Settings every seeded cluster starts from: all six controls compliant. */
const DOCUMENTATION_RANGE = '203.0.113.0/24'; // TEST-NET-3, reserved for documentation

/**
 * Seeds a small fleet with one cluster per kind of drift (plus a compliant reference) and returns what
 * was seeded, so the demo can print it and tests can check NetGuard's verdicts against it.
 */
export function seedDriftedFleet(sandbox: ArmSandbox, options: FleetOptions = {}): SeededFleet {
  const subscriptionId = options.subscriptionId ?? '00000000-0000-0000-0000-000000000000';
  const resourceGroup = options.resourceGroup ?? 'rg-aks-fleet';
  const location = options.location ?? 'westeurope';
  sandbox.addSubscription(subscriptionId, 'AKS NetGuard demo subscription');
  const clusters: SeededCluster[] = [];

  const hardened = (): Partial<ArmManagedCluster['properties']> => ({
    apiServerAccessProfile: { authorizedIPRanges: [DOCUMENTATION_RANGE] },
    serviceMeshProfile: istioServiceMeshProfile(),
  });
  const hardenNetwork = (cluster: ArmManagedCluster): ArmManagedCluster => {
    const network = cluster.properties.networkProfile ?? {};
    network.networkPolicy = 'calico';
    network.outboundType = 'userDefinedRouting';
    // instance-metadata: pods kept from link-local addresses, so no cluster of the fleet needs its
    // Kubernetes objects read (the fleet has no Kubernetes API stand-in; test/kube wires one).
    network.podLinkLocalAccess = 'None';
    delete network.loadBalancerProfile; // a UDR cluster has no outbound load balancer settings
    cluster.properties.networkProfile = network;
    return cluster;
  };

  /** One BYO-VNet cluster with its own VNet (10.{octet}.0.0/16), node subnet and NSG. */
  const byoCluster = (
    label: string,
    name: string,
    octet: number,
    nsg: { rules: (nodePrefix: string, podPrefix?: string) => ArmSecurityRule[]; tags?: Record<string, string> } | 'none',
    vary: (cluster: ArmManagedCluster) => void,
    describe: Omit<SeededCluster, 'label' | 'clusterId' | 'nodeSubnetIds' | 'nsgIds'>,
    withPodSubnet = false,
  ): void => {
    const nodePrefix = `10.${octet}.0.0/22`;
    const podPrefix = withPodSubnet ? `10.${octet}.4.0/22` : undefined;
    const nsgId = nsg === 'none' ? undefined : armId(subscriptionId, resourceGroup, 'Microsoft.Network', 'networkSecurityGroups', `${name}-nodes-nsg`);
    if (nsg !== 'none') {
      sandbox.put(nsgFromFixture({ subscriptionId, resourceGroup, name: `${name}-nodes-nsg`, location, securityRules: nsg.rules(nodePrefix, podPrefix), tags: nsg.tags }));
    }
    const vnet = vnetWithSubnets({
      subscriptionId,
      resourceGroup,
      name: `${name}-vnet`,
      location,
      addressPrefixes: [`10.${octet}.0.0/16`],
      subnets: [{ name: 'nodes', addressPrefix: nodePrefix, nsgId }, ...(podPrefix ? [{ name: 'pods', addressPrefix: podPrefix }] : [])],
    });
    sandbox.put(vnet);
    const nodeSubnetId = `${vnet.id}/subnets/nodes`;
    const cluster = hardenNetwork(
      clusterFromFixture({
        subscriptionId,
        resourceGroup,
        name,
        location,
        nodeSubnetId,
        podSubnetId: podPrefix ? `${vnet.id}/subnets/pods` : undefined,
        properties: hardened(),
      }),
    );
    vary(cluster);
    sandbox.put(cluster);
    clusters.push({ label, clusterId: cluster.id, nodeSubnetIds: [nodeSubnetId], nsgIds: nsgId ? [nsgId] : [], ...describe });
  };

  const denyFor = (nodePrefix: string, podPrefix?: string, priority = 200) => netGuardSshDenyRule(podPrefix ? [nodePrefix, podPrefix] : [nodePrefix], priority);
  const publishedRule1 = (): ArmSecurityRule[] => nsgFromFixture({ subscriptionId, resourceGroup, name: 'x' }).properties.securityRules!.map((r) => ({ name: r.name, properties: r.properties }));

  byoCluster('a', 'aks-compliant', 1, { rules: (n, p) => [...publishedRule1(), denyFor(n, p)] }, () => undefined, {
    problem: 'Compliant reference: BYO VNet, SSH to nodes denied by NetGuard’s rule, authorized IP ranges, calico, userDefinedRouting egress, Istio, pods kept from the instance metadata service by podLinkLocalAccess None.',
    driftedControls: [],
  }, true);

  byoCluster('b', 'aks-no-ssh-deny', 2, { rules: () => [] }, () => undefined, {
    problem: 'The node subnet’s NSG has only the default rules, so AllowVnetInBound lets SSH reach the nodes.',
    driftedControls: ['node-ssh-deny'],
  });

  byoCluster(
    'c',
    'aks-shadowed-deny',
    3,
    {
      rules: (n) => [
        securityRule('allow-ssh-from-vnet', {
          description: 'Ops jump access',
          protocol: 'Tcp',
          sourceAddressPrefix: 'VirtualNetwork',
          destinationAddressPrefix: '*',
          destinationPortRange: '22',
          access: 'Allow',
          priority: 300,
          direction: 'Inbound',
        }),
        denyFor(n, undefined, 400),
      ],
    },
    () => undefined,
    {
      problem: `NetGuard’s deny rule (priority 400) is shadowed by allow-ssh-from-vnet, an Allow for port 22 at priority 300.`,
      driftedControls: ['node-ssh-deny'],
    },
  );

  byoCluster('d', 'aks-open-api', 4, { rules: (n) => [denyFor(n)] }, (c) => {
    c.properties.apiServerAccessProfile = { authorizedIPRanges: [] };
  }, {
    problem: 'The API server’s authorized IP ranges were cleared: the public endpoint is open to the internet.',
    driftedControls: ['api-authorized-ranges'],
  });

  byoCluster('e', 'aks-http-routing', 5, { rules: (n) => [denyFor(n)] }, (c) => {
    c.properties.addonProfiles = httpApplicationRoutingAddons();
  }, {
    problem: 'The httpApplicationRouting add-on (not for production; publishes ingress on public DNS) is enabled.',
    driftedControls: ['http-application-routing'],
  });

  // (f) AKS-managed VNet: no pool names a subnet; AKS made the VNet and NSG in the node resource group.
  {
    const name = 'aks-managed-vnet';
    const cluster = clusterFromFixture({ subscriptionId, resourceGroup, name, location, properties: hardened() });
    cluster.properties.networkProfile = { ...(cluster.properties.networkProfile ?? {}), networkPolicy: 'calico', podLinkLocalAccess: 'None' };
    const nodeRg = cluster.properties.nodeResourceGroup!;
    const nsg = nsgFromFixture({ subscriptionId, resourceGroup: nodeRg, name: 'aks-agentpool-31415926-nsg', location, securityRules: [] });
    sandbox.put(nsg);
    const vnet = vnetWithSubnets({
      subscriptionId,
      resourceGroup: nodeRg,
      name: 'aks-vnet-31415926',
      location,
      addressPrefixes: ['10.224.0.0/12'],
      subnets: [{ name: 'aks-subnet', addressPrefix: '10.224.0.0/16', nsgId: nsg.id }],
    });
    sandbox.put(vnet);
    sandbox.put(cluster);
    clusters.push({
      label: 'f',
      clusterId: cluster.id,
      nodeSubnetIds: [`${vnet.id}/subnets/aks-subnet`],
      nsgIds: [nsg.id],
      problem: 'On the AKS-managed VNet in its node resource group: the managed NSG has only default rules (SSH to nodes allowed) and egress goes out through the load balancer.',
      driftedControls: ['node-ssh-deny', 'egress-lockdown'],
    });
  }

  byoCluster('g', 'aks-bare-subnet', 7, 'none', () => undefined, {
    problem: 'The node subnet has no NSG at all; NetGuard cannot choose one, so it can only report it.',
    driftedControls: ['node-ssh-deny'],
  });

  byoCluster('h', 'aks-exempt', 8, { rules: () => [] }, (c) => {
    c.tags = { ...(c.tags ?? {}), [NETGUARD_EXEMPT_TAG]: '*' };
    c.properties.addonProfiles = httpApplicationRoutingAddons();
  }, {
    problem: 'Exempt from every control by its aks-netguard-exempt=* tag, although SSH is open and httpApplicationRouting is on.',
    driftedControls: ['node-ssh-deny', 'http-application-routing'],
    exempt: '*',
  });

  byoCluster(
    'i',
    'aks-allow-ssh-100',
    9,
    {
      rules: () => [
        securityRule('allow-ssh-jumphosts', {
          description: 'SSH from the corporate range',
          protocol: 'Tcp',
          sourceAddressPrefix: '10.0.0.0/8',
          destinationAddressPrefix: '*',
          destinationPortRange: '22',
          access: 'Allow',
          priority: 100,
          direction: 'Inbound',
        }),
      ],
    },
    () => undefined,
    {
      problem: 'An Allow for SSH from 10.0.0.0/8 sits at priority 100, the best there is: no deny can beat it, only narrowing that Allow (a person must approve).',
      driftedControls: ['node-ssh-deny'],
      needsPerson: true,
    },
  );

  if (options.kube) seedInstanceMetadataCases(sandbox, byoCluster, denyFor, options.kube);

  return { subscriptionId, resourceGroup, location, clusters };
}

/** The byoCluster helper of seedDriftedFleet, passed on so the extra clusters are built the same way. */
type ByoCluster = (
  label: string,
  name: string,
  octet: number,
  nsg: { rules: (nodePrefix: string, podPrefix?: string) => ArmSecurityRule[] },
  vary: (cluster: ArmManagedCluster) => void,
  describe: Omit<SeededCluster, 'label' | 'clusterId' | 'nodeSubnetIds' | 'nsgIds'>,
) => void;

/** An egress policy as a team would write it: every pod of the namespace, egress anywhere. */
const ALLOW_EGRESS_ANYWHERE = {
  metadata: { name: 'allow-egress-anywhere', labels: { team: 'payments' } },
  spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] },
};
/** Every pod of the namespace isolated for egress, nothing allowed: the address is blocked. */
const DENY_ALL_EGRESS = { metadata: { name: 'default-deny-egress' }, spec: { podSelector: {}, policyTypes: ['Egress'] } };

/**
 * One cluster per instance-metadata case that needs more than podLinkLocalAccess None (cluster a is
 * the compliant one): every other control is compliant on them, so each shows only its own case.
 */
function seedInstanceMetadataCases(
  sandbox: ArmSandbox,
  byoCluster: ByoCluster,
  denyFor: (nodePrefix: string) => ArmSecurityRule,
  kube: NonNullable<FleetOptions['kube']>,
): void {
  const entra = { managed: true, enableAzureRBAC: true };
  // Pods may reach link-local addresses (the property is absent on clusters made before it existed).
  const linkLocalOpen = (c: ArmManagedCluster): void => {
    delete c.properties.networkProfile?.podLinkLocalAccess;
  };
  const rules = { rules: (n: string) => [denyFor(n)] };

  byoCluster('j', 'aks-imds-no-policy-engine', 10, rules, (c) => {
    linkLocalOpen(c);
    delete c.properties.networkProfile!.networkPolicy;
    c.properties.aadProfile = entra;
  }, {
    problem: 'No network policy engine and podLinkLocalAccess not None: every pod can reach the instance metadata service, and no NetworkPolicy could stop it (reported; see network-policy).',
    driftedControls: ['network-policy', 'instance-metadata'],
  });

  kube.openNamespace.addNamespace('kube-system');
  kube.openNamespace.addNamespace('storefront');
  byoCluster('k', 'aks-imds-open-namespace', 11, rules, (c) => {
    linkLocalOpen(c);
    c.properties.aadProfile = entra;
    // listClusterUserCredential of this cluster names its stand-in API server.
    sandbox.setKubeApiServer(c.id, kube.openNamespace.url);
  }, {
    problem: 'Calico on, but the namespace storefront has no egress policy: its pods can reach the instance metadata service. NetGuard’s fix creates aks-netguard-deny-instance-metadata there (approve mode: it waits for a person).',
    driftedControls: ['instance-metadata'],
  });

  kube.admitsImds.addNamespace('kube-system');
  kube.admitsImds.putPolicy('default', DENY_ALL_EGRESS);
  kube.admitsImds.putPolicy('payments', ALLOW_EGRESS_ANYWHERE);
  byoCluster('l', 'aks-imds-admitted', 12, rules, (c) => {
    linkLocalOpen(c);
    c.properties.aadProfile = entra;
    sandbox.setKubeApiServer(c.id, kube.admitsImds.url);
  }, {
    problem: 'The namespace payments has its own egress policy, allow-egress-anywhere, which admits the instance metadata service: NetGuard never writes next to a team’s egress policies, so a person must change it.',
    driftedControls: ['instance-metadata'],
    needsPerson: true,
  });

  byoCluster('m', 'aks-imds-local-accounts', 13, rules, (c) => {
    linkLocalOpen(c);
    delete c.properties.aadProfile;
  }, {
    problem: 'Local Kubernetes accounts only (no Microsoft Entra integration): NetGuard cannot sign in to judge its namespaces, and says how to grant access (error).',
    driftedControls: ['instance-metadata'],
  });
}
