// Judgement from outside NetGuard: whether a write widened access (NSGs with the project's exact
// evaluator over every flow: both directions, every protocol, every port, all addresses), and
// whether a seeded cluster's enforced controls are drifted, read straight from the stand-in's state.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg, type FlowRegion } from '../../shared/net/nsgEvaluator';
import { MAX_PORT, portRangesOf } from '../../shared/net/ports';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededCluster } from '../../testkit/fleet';

const PROTOCOLS = ['Tcp', 'Udp', 'Icmp', 'Esp', 'Ah'];
const DIRECTIONS = ['Inbound', 'Outbound'] as const;

/** Ports where some rule's destination range starts or ends: every port between two of them is decided alike. */
function boundaryPorts(rules: readonly ArmSecurityRule[]): number[] {
  const ports = new Set<number>([0]);
  for (const r of rules) {
    for (const range of portRangesOf(r.properties?.destinationPortRange, r.properties?.destinationPortRanges).ranges) {
      ports.add(range.from);
      if (range.to + 1 <= MAX_PORT) ports.add(range.to + 1);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

function allowedRegions(rules: readonly ArmSecurityRule[], direction: 'Inbound' | 'Outbound', protocol: string, port: number, vnetSpace: AddressSet): FlowRegion[] {
  const all = AddressSet.all();
  const result = evaluateNsgAccess(rules, { direction, protocol, port, sources: all, destinations: all }, { virtualNetwork: vnetSpace });
  return result.allowedBy.flatMap((o) => o.parts);
}

/** `region` minus the union of `cover`, as rectangles (empty when covered). */
function uncovered(region: FlowRegion, cover: readonly FlowRegion[]): FlowRegion[] {
  let left = [region];
  for (const c of cover) {
    left = left.flatMap((r) => {
      const s = r.sources.intersect(c.sources);
      const d = r.destinations.intersect(c.destinations);
      if (s.isEmpty() || d.isEmpty()) return [r];
      const out: FlowRegion[] = [];
      const outsideSources = r.sources.subtract(c.sources);
      if (!outsideSources.isEmpty()) out.push({ sources: outsideSources, destinations: r.destinations });
      const outsideDestinations = r.destinations.subtract(c.destinations);
      if (!outsideDestinations.isEmpty()) out.push({ sources: s, destinations: outsideDestinations });
      return out;
    });
    if (left.length === 0) break;
  }
  return left;
}

/**
 * The first flow an NSG write newly allows, described, or undefined when everything denied before is
 * still denied. A deleted NSG allows nothing more (it is judged elsewhere).
 */
export function nsgWidening(before: ArmNetworkSecurityGroup | undefined, after: ArmNetworkSecurityGroup | undefined, vnetSpace: AddressSet): string | undefined {
  if (!after) return undefined;
  const beforeRules = before ? rulesOfNsg(before) : [];
  const afterRules = rulesOfNsg(after);
  const ports = boundaryPorts([...beforeRules, ...afterRules]);
  for (const direction of DIRECTIONS) {
    for (const protocol of PROTOCOLS) {
      for (const port of protocol === 'Icmp' || protocol === 'Esp' || protocol === 'Ah' ? [0] : ports) {
        const was = before ? allowedRegions(beforeRules, direction, protocol, port, vnetSpace) : [];
        for (const region of allowedRegions(afterRules, direction, protocol, port, vnetSpace)) {
          const opened = uncovered(region, was);
          if (opened.length > 0) {
            return `${direction} ${protocol}/${port} from ${opened[0].sources.toCidrs().slice(0, 3).join(',')} to ${opened[0].destinations.toCidrs().slice(0, 3).join(',')}`;
          }
        }
      }
    }
  }
  return undefined;
}

/** Authorized ranges as addresses; private or empty lists handled by the caller. */
function rangesAdmit(ranges: readonly string[]): AddressSet {
  return AddressSet.parse(ranges.filter((r) => typeof r === 'string').map((r) => (r.trim() === '*' ? '0.0.0.0/0' : r.trim()))).set;
}

/** Who can reach the API server: nobody outside for a private cluster, everyone without ranges. */
function apiAudience(c: ArmManagedCluster | undefined): AddressSet {
  const p = c?.properties?.apiServerAccessProfile;
  if (p?.enablePrivateCluster === true) return AddressSet.empty();
  const ranges = Array.isArray(p?.authorizedIPRanges) ? p!.authorizedIPRanges! : [];
  return ranges.length === 0 ? AddressSet.all() : rangesAdmit(ranges);
}

function routingOn(c: ArmManagedCluster | undefined): boolean {
  const addons = (c?.properties?.addonProfiles ?? {}) as Record<string, { enabled?: boolean } | undefined>;
  return Object.entries(addons).some(([k, v]) => k.toLowerCase() === 'httpapplicationrouting' && v?.enabled === true);
}

const POLICY_ENGINES = ['azure', 'calico', 'cilium'];

/** What a cluster write opened, or undefined. */
export function clusterWidening(before: ArmManagedCluster | undefined, after: ArmManagedCluster | undefined): string | undefined {
  if (!before || !after) return undefined;
  const opened = apiAudience(after).subtract(apiAudience(before));
  if (!opened.isEmpty()) return `API server newly reachable from ${opened.toCidrs().slice(0, 3).join(',')}`;
  if (routingOn(after) && !routingOn(before)) return 'httpApplicationRouting enabled';
  const policy = (c: ArmManagedCluster) => String(c.properties?.networkProfile?.networkPolicy ?? '').toLowerCase();
  if (POLICY_ENGINES.includes(policy(before)) && !POLICY_ENGINES.includes(policy(after))) return 'network policy engine removed';
  const outbound = (c: ArmManagedCluster) => String(c.properties?.networkProfile?.outboundType ?? '');
  if (outbound(before) === 'userDefinedRouting' && outbound(after) !== 'userDefinedRouting') return 'egress lockdown removed';
  return undefined;
}

/** Everything but the bookkeeping ARM changes on every write, to tell a write that changed nothing. */
export function normalized(resource: unknown): string {
  return JSON.stringify(resource, (key, value) => (['etag', 'eTag', 'provisioningState', 'tags'].includes(key) ? undefined : value));
}

// ---------------------------------------------------------------- drift, judged independently

export type EnforcedControl = 'node-ssh-deny' | 'api-authorized-ranges' | 'http-application-routing';

export interface TargetDrift {
  control: EnforcedControl;
  clusterId: string;
  targetId: string;
  drifted: boolean;
}

function vnetOfSubnet(sandbox: ArmSandbox, subnetId: string): ArmVirtualNetwork | undefined {
  return sandbox.get<ArmVirtualNetwork>(subnetId.replace(/\/subnets\/[^/]+$/i, ''));
}

function subnetPrefixes(sandbox: ArmSandbox, subnetId: string): string[] {
  const vnet = vnetOfSubnet(sandbox, subnetId);
  const subnet = vnet?.properties.subnets?.find((s) => s.id.toLowerCase() === subnetId.toLowerCase());
  return subnet ? [subnet.properties.addressPrefix, ...(subnet.properties.addressPrefixes ?? [])].filter((p): p is string => !!p) : [];
}

/** Every VNet address space in the stand-in: the `VirtualNetwork` tag as NetGuard's evaluator sees it. */
export function vnetSpaceOf(sandbox: ArmSandbox): AddressSet {
  const prefixes = sandbox.list<ArmVirtualNetwork>('Microsoft.Network/virtualNetworks').flatMap((v) => v.properties.addressSpace?.addressPrefixes ?? []);
  return AddressSet.fromPrefixes(prefixes);
}

/** The enforced controls of a seeded cluster that a sweep can judge, as they stand now. */
export function enforcedDrift(sandbox: ArmSandbox, seeded: SeededCluster): TargetDrift[] {
  const cluster = sandbox.get<ArmManagedCluster>(seeded.clusterId);
  if (!cluster) return [];
  const out: TargetDrift[] = [];
  const pods = (cluster.properties.agentPoolProfiles ?? []).map((p) => p.podSubnetID).filter((x): x is string => !!x);
  const sources = AddressSet.fromPrefixes([...seeded.nodeSubnetIds, ...pods].flatMap((s) => subnetPrefixes(sandbox, s)));
  for (const subnetId of seeded.nodeSubnetIds) {
    const vnet = vnetOfSubnet(sandbox, subnetId);
    const subnet = vnet?.properties.subnets?.find((s) => s.id.toLowerCase() === subnetId.toLowerCase());
    const nsgId = subnet?.properties.networkSecurityGroup?.id;
    if (!nsgId) {
      out.push({ control: 'node-ssh-deny', clusterId: seeded.clusterId, targetId: subnetId, drifted: true });
      continue;
    }
    const nsg = sandbox.get<ArmNetworkSecurityGroup>(nsgId);
    const destinations = AddressSet.fromPrefixes(subnetPrefixes(sandbox, subnetId));
    const decision = nsg
      ? evaluateNsgAccess(rulesOfNsg(nsg), { direction: 'Inbound', protocol: 'Tcp', port: 22, sources, destinations }, { virtualNetwork: vnet?.properties.addressSpace?.addressPrefixes ?? [] }).decision
      : 'Allow';
    out.push({ control: 'node-ssh-deny', clusterId: seeded.clusterId, targetId: nsgId, drifted: decision !== 'Deny' });
  }
  const audience = apiAudience(cluster);
  const everyone = audience.containsAll(AddressSet.allOf(4)) || audience.containsAll(AddressSet.allOf(6));
  out.push({ control: 'api-authorized-ranges', clusterId: seeded.clusterId, targetId: seeded.clusterId, drifted: everyone });
  out.push({ control: 'http-application-routing', clusterId: seeded.clusterId, targetId: seeded.clusterId, drifted: routingOn(cluster) });
  return out;
}

export const driftKey = (control: string, targetId: string) => `${control}|${targetId.toLowerCase()}`;
