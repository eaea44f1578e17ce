// node-ssh-deny (enforced): inbound SSH (TCP/22) from the cluster's own subnets to its nodes is denied
// by every NSG on a node subnet, so a compromised pod or node cannot hop to the other nodes over SSH.
// Judged exactly (nsgEvaluator); repaired with one fixed-name Deny rule per NSG.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmVirtualNetwork, SecurityRuleProperties } from '../azure/armTypes';
import { idKey, lastSegment, sameId } from '../azure/ids';
import type { SubnetRef, TopologyIndex } from '../azure/topology';
import { vnetIdOfSubnet } from '../azure/topology';
import { AddressSet, isAddressPrefix, sortPrefixes } from '../net/addressSet';
import {
  describeRule,
  evaluateNsgAccess,
  resolveRuleSide,
  rulesOfNsg,
  type NsgAccessResult,
  type NsgFlow,
  type RuleOutcome,
} from '../net/nsgEvaluator';
import { compareNsgAccess, describeFlowBox } from '../net/accessDiff';
import { coversAllPorts, formatPortRange, mergePortRanges, portRangesOf, withoutPort } from '../net/ports';
import type { ClusterObservation, Control, Judgement, NoPlan, SecurityRuleChange } from './types';

export const MANAGED_SSH_RULE_NAME = 'aks-netguard-deny-node-ssh';
export const SSH_PORT = 22;
export const MIN_RULE_PRIORITY = 100;
export const MAX_RULE_PRIORITY = 4096;

const MANAGED_RULE_DESCRIPTION =
  'Managed by AKS NetGuard (node-ssh-deny): denies SSH from the AKS node and pod subnets to the nodes. NetGuard restores it if it is changed or removed.';

/** The prefixes of a cluster's AKS subnets (node and pod), and the subnets that were not found. */
export function aksSourcePrefixes(cluster: ArmManagedCluster, topology: TopologyIndex): { prefixes: string[]; missing: string[] } {
  const s = topology.clusterSubnets(cluster);
  const all = [...s.nodeSubnets, ...s.podSubnets];
  return {
    prefixes: sortPrefixes(all.filter((x) => x.found).flatMap((x) => x.prefixes)).filter(isAddressPrefix),
    missing: all.filter((x) => !x.found).map((x) => x.id),
  };
}

/** Node subnets behind one NSG that share a VNet, and what VirtualNetwork means for them. */
interface DestinationGroup {
  vnet?: ArmVirtualNetwork;
  subnets: SubnetRef[];
  virtualNetwork: AddressSet;
  destinations: AddressSet;
}

function groupByVnet(subnets: readonly SubnetRef[], topology: TopologyIndex): DestinationGroup[] {
  const groups = new Map<string, DestinationGroup>();
  for (const subnet of subnets) {
    const key = idKey(subnet.vnet?.id ?? vnetIdOfSubnet(subnet.id));
    let g = groups.get(key);
    if (!g) {
      const virtualNetwork = AddressSet.parse(topology.virtualNetworkSpace(subnet.vnet)).set;
      g = { vnet: subnet.vnet, subnets: [], virtualNetwork, destinations: AddressSet.empty() };
      groups.set(key, g);
    }
    g.subnets.push(subnet);
    g.destinations = g.destinations.union(AddressSet.parse(subnet.prefixes).set);
  }
  return [...groups.values()];
}

/**
 * Addresses of the subnets this NSG also guards that are not AKS subnets of the clusters behind it (one
 * NSG shared with a jump host or a server subnet). A Deny to `VirtualNetwork` would cut SSH from the AKS
 * subnets to them too, which is not NetGuard's to cut.
 */
function otherGuardedSubnets(nsg: ArmNetworkSecurityGroup, topology: TopologyIndex, clusters: readonly ArmManagedCluster[]): AddressSet {
  const aks = new Set<string>();
  for (const c of clusters) {
    const s = topology.clusterSubnets(c);
    for (const x of [...s.nodeSubnets, ...s.podSubnets]) aks.add(idKey(x.id));
  }
  const listed = new Set((nsg.properties?.subnets ?? []).map((s) => idKey(s.id)));
  let other = AddressSet.empty();
  for (const vnet of topology.inventory.vnets) {
    for (const subnet of vnet.properties?.subnets ?? []) {
      if (aks.has(idKey(subnet.id))) continue;
      if (!listed.has(idKey(subnet.id)) && !sameId(subnet.properties?.networkSecurityGroup?.id, nsg.id)) continue;
      const prefixes = [subnet.properties?.addressPrefix, ...(subnet.properties?.addressPrefixes ?? [])].filter((p): p is string => !!p);
      other = other.union(AddressSet.parse(prefixes).set);
    }
  }
  return other;
}

function sshFlow(sources: AddressSet, destinations: AddressSet): NsgFlow {
  return { direction: 'Inbound', protocol: 'Tcp', port: SSH_PORT, sources, destinations };
}

/** The exact SSH decision of an NSG for these sources and node subnets, one result per VNet. */
export function assessNodeSsh(
  nsg: ArmNetworkSecurityGroup,
  sources: AddressSet,
  nodeSubnets: readonly SubnetRef[],
  topology: TopologyIndex,
): { compliant: boolean; results: NsgAccessResult[] } {
  const rules = rulesOfNsg(nsg);
  const results = groupByVnet(nodeSubnets, topology).map((g) =>
    evaluateNsgAccess(rules, sshFlow(sources, g.destinations), { virtualNetwork: g.virtualNetwork }),
  );
  return { compliant: results.every((r) => r.decision === 'Deny'), results };
}

function listNames(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function cidrList(cidrs: string[]): string {
  return cidrs.length > 4 ? `${cidrs.slice(0, 4).join(', ')} and ${cidrs.length - 4} more` : cidrs.join(', ');
}

function describeAllowed(result: NsgAccessResult, allDestinations: AddressSet, note: string): string {
  const definite = result.allowedBy.filter((o) => !o.possible);
  const shown: RuleOutcome[] = definite.length > 0 ? definite : result.allowedBy;
  const sources = shown.reduce((acc, o) => acc.union(AddressSet.fromPrefixes(o.sources)), AddressSet.empty());
  const destinations = shown.reduce((acc, o) => acc.union(AddressSet.fromPrefixes(o.destinations)), AddressSet.empty());
  const toNodes = destinations.containsAll(allDestinations) ? 'the nodes' : `the nodes in ${cidrList(destinations.toCidrs())}`;
  const how = definite.length > 0 ? (result.decision === 'Mixed' ? 'partly allowed' : 'allowed') : 'possibly allowed';
  const rules = shown.map((o) => (o.possible ? `${describeRule(o.rule).slice(0, -1)}, which may match because ${o.uncertainty})` : describeRule(o.rule)));
  const byRules = `${rules.length > 1 ? 'rules' : 'rule'} ${listNames([...new Set(rules)])}`;
  const shadowed = result.shadowedDenies.map((s) => `${s.rule.name} at ${s.rule.priority}`);
  const tail =
    shadowed.length > 0
      ? `; the Deny ${listNames(shadowed)} ${shadowed.length > 1 ? 'are' : 'is'} shadowed`
      : `; no Deny for TCP/22 from these sources comes before it`;
  return `Inbound SSH from ${cidrList(sources.toCidrs())} to ${toNodes} is ${how} by ${byRules}${tail}${note}.`;
}

function describeDenied(results: NsgAccessResult[], nsgName: string, note: string): string {
  const denies = new Map<string, string>();
  for (const r of results) for (const o of r.deniedBy) denies.set(o.rule.name, `${o.rule.name} (priority ${o.rule.priority})`);
  if (denies.size === 0) return `SSH to the nodes is denied: no rule of the NSG ${nsgName} allows it${note}.`;
  return `SSH to the nodes is denied by ${listNames([...denies.values()])}${note}.`;
}

function judgement(cluster: ArmManagedCluster, targetId: string, compliant: boolean, detail: string, nsg?: ArmNetworkSecurityGroup): Judgement {
  return {
    control: 'node-ssh-deny',
    clusterId: cluster.id,
    targetId,
    compliant,
    detail,
    tagSources: [nsg?.tags, cluster.tags],
  };
}

/**
 * Judges one NSG for one cluster: inbound TCP/22 from every AKS subnet of the cluster to its node
 * subnets attached to this NSG must be denied. Reusable by a verifier after a write.
 */
export function judgeNsgForCluster(cluster: ArmManagedCluster, nsgId: string, topology: TopologyIndex): Judgement {
  const subnets = topology.clusterSubnets(cluster).nodeSubnets.filter((s) => s.found && sameId(s.nsgId, nsgId));
  const nsg = topology.nsg(nsgId);
  const subnetNames = listNames(subnets.map((s) => lastSegment(s.id)));
  if (!nsg) {
    return judgement(
      cluster,
      nsgId,
      false,
      `The NSG ${lastSegment(nsgId)} attached to node subnet ${subnetNames || '(none)'} was not found, so NetGuard cannot judge SSH to those nodes: check that NetGuard can read it.`,
    );
  }
  if (subnets.length === 0) {
    return judgement(cluster, nsg.id, false, `No node subnet of ${cluster.name} is attached to the NSG ${nsg.name} any more, so NetGuard cannot judge it for this cluster.`, nsg);
  }
  const { prefixes, missing } = aksSourcePrefixes(cluster, topology);
  const missingNote = missing.length > 0 ? `; the subnet ${listNames(missing.map(lastSegment))} was not found, so its addresses are not judged` : '';
  const sources = AddressSet.fromPrefixes(prefixes);
  const destinations = AddressSet.parse(subnets.flatMap((s) => s.prefixes)).set;
  if (sources.isEmpty() || destinations.isEmpty()) {
    return judgement(cluster, nsg.id, false, `The node subnet ${subnetNames} behind the NSG ${nsg.name} has no address prefix NetGuard can read, so it cannot judge SSH to those nodes.`, nsg);
  }
  const { compliant, results } = assessNodeSsh(nsg, sources, subnets, topology);
  if (compliant) return judgement(cluster, nsg.id, true, describeDenied(results, nsg.name, missingNote), nsg);
  const worst = results.find((r) => r.decision !== 'Deny')!;
  return judgement(cluster, nsg.id, false, describeAllowed(worst, destinations, missingNote), nsg);
}

function evaluate(observation: ClusterObservation): Judgement[] {
  const { cluster, topology } = observation;
  const subnets = topology.clusterSubnets(cluster);
  if (subnets.nodeSubnets.length === 0) {
    const where = subnets.managedVnet
      ? `no virtual network was found in its node resource group ${cluster.properties?.nodeResourceGroup ?? '(not set)'}`
      : 'no node pool names a subnet';
    return [judgement(cluster, cluster.id, false, `NetGuard cannot judge SSH to the nodes of ${cluster.name}: ${where}; check that NetGuard can read the cluster's network.`)];
  }
  const out: Judgement[] = [];
  const seenNsgs = new Set<string>();
  for (const subnet of subnets.nodeSubnets) {
    if (!subnet.found) {
      out.push(
        judgement(cluster, subnet.id, false, `The node subnet ${lastSegment(subnet.id)} was not found, so NetGuard cannot judge SSH to its nodes: check that NetGuard can read its virtual network.`),
      );
    } else if (!subnet.nsgId) {
      out.push(
        judgement(
          cluster,
          subnet.id,
          false,
          `No NSG is attached to the node subnet ${lastSegment(subnet.id)}, so nothing denies SSH to its nodes: attach an NSG to the subnet and NetGuard will add its Deny rule.`,
        ),
      );
    } else if (!seenNsgs.has(idKey(subnet.nsgId))) {
      seenNsgs.add(idKey(subnet.nsgId));
      out.push(judgeNsgForCluster(cluster, subnet.nsgId, topology));
    }
  }
  return out;
}

function isManagedRule(rule: ArmSecurityRule): boolean {
  return rule.name.toLowerCase() === MANAGED_SSH_RULE_NAME;
}

/** Custom Allow rules that match inbound TCP/22 from any of the sources to any node behind the NSG. */
function matchingAllows(rules: readonly ArmSecurityRule[], sources: AddressSet, groups: readonly DestinationGroup[]): ArmSecurityRule[] {
  return rules
    .filter((r) => String(r.properties?.access).toLowerCase() === 'allow' && !isManagedRule(r))
    .filter((r) => groups.some((g) => evaluateNsgAccess([r], sshFlow(sources, g.destinations), { virtualNetwork: g.virtualNetwork }).allowedBy.length > 0))
    .sort((a, b) => a.properties.priority - b.properties.priority);
}

function readOnlyStripped(props: SecurityRuleProperties): SecurityRuleProperties {
  const copy: SecurityRuleProperties = JSON.parse(JSON.stringify(props));
  delete copy.provisioningState;
  return copy;
}

/**
 * The change that makes the NSG deny SSH from the AKS subnets of every cluster behind it: the managed
 * Deny rule at the highest free priority that beats every matching Allow, or, when no such priority
 * exists, narrowing the Allow that blocks it (which always needs a person).
 */
export function planNodeSshDeny(nsg: ArmNetworkSecurityGroup, topology: TopologyIndex, alsoCluster?: ArmManagedCluster): SecurityRuleChange | NoPlan {
  const clusters = topology.clustersBehindNsg(nsg.id);
  if (alsoCluster && !clusters.some((c) => sameId(c.id, alsoCluster.id)) && topology.clusterSubnets(alsoCluster).nodeSubnets.some((s) => sameId(s.nsgId, nsg.id))) {
    clusters.push(alsoCluster);
  }
  const sourcePrefixes = sortPrefixes(clusters.flatMap((c) => aksSourcePrefixes(c, topology).prefixes));
  if (sourcePrefixes.length === 0) {
    return { kind: 'none', reason: `No AKS subnet behind the NSG ${nsg.name} has an address prefix NetGuard can read, so it cannot write a Deny rule.` };
  }
  const sources = AddressSet.fromPrefixes(sourcePrefixes);
  const nodeSubnets = new Map<string, SubnetRef>();
  for (const c of clusters) {
    for (const s of topology.clusterSubnets(c).nodeSubnets) if (s.found && sameId(s.nsgId, nsg.id)) nodeSubnets.set(idKey(s.id), s);
  }
  const groups = groupByVnet([...nodeSubnets.values()], topology);
  const custom = nsg.properties?.securityRules ?? [];
  const existing = custom.find(isManagedRule);
  const allows = matchingAllows(custom, sources, groups);
  const used = new Set(
    custom.filter((r) => !isManagedRule(r) && String(r.properties?.direction).toLowerCase() === 'inbound').map((r) => r.properties.priority),
  );
  const ceiling = Math.min(MAX_RULE_PRIORITY, allows.length > 0 ? allows[0].properties.priority - 1 : MAX_RULE_PRIORITY);
  let priority: number | undefined;
  for (let p = ceiling; p >= MIN_RULE_PRIORITY; p--) {
    if (!used.has(p)) {
      priority = p;
      break;
    }
  }

  if (priority !== undefined) {
    // In an NSG shared with other subnets the rule names the node subnets, not VirtualNetwork.
    const others = otherGuardedSubnets(nsg, topology, clusters);
    const nodeDestinations = groups.reduce((acc, g) => acc.union(g.destinations), AddressSet.empty());
    const desired: SecurityRuleProperties = {
      description: MANAGED_RULE_DESCRIPTION,
      protocol: 'Tcp',
      sourcePortRange: '*',
      destinationPortRange: String(SSH_PORT),
      sourceAddressPrefixes: sourcePrefixes,
      ...(others.isEmpty() ? { destinationAddressPrefix: 'VirtualNetwork' } : { destinationAddressPrefixes: nodeDestinations.toCidrs() }),
      access: 'Deny',
      priority,
      direction: 'Inbound',
    };
    const beats = allows.length > 0 ? `, before the Allow ${describeRule({ ...refOf(allows[0]) })}` : '';
    if (existing) return planRepair(nsg, existing, desired, used, sources, groups, beats, others);
    return {
      kind: 'security-rule',
      nsgId: nsg.id,
      ruleName: MANAGED_SSH_RULE_NAME,
      after: desired,
      needsPerson: false,
      summary: `Create the Deny rule ${MANAGED_SSH_RULE_NAME} in the NSG ${nsg.name} at priority ${priority}${beats}: inbound TCP/22 from ${cidrList(sourcePrefixes)} to the nodes is denied.`,
    };
  }

  const blocking = allows[0];
  if (!blocking) {
    return { kind: 'none', reason: `The NSG ${nsg.name} has no free inbound priority between ${MIN_RULE_PRIORITY} and ${MAX_RULE_PRIORITY} for the Deny rule ${MANAGED_SSH_RULE_NAME}.` };
  }
  return planNarrowing(nsg, blocking, sources, groups);
}

/** The tokens of one side of a rule (prefix and prefixes together). */
function sideTokens(single: string | undefined, list: readonly string[] | undefined): string[] {
  return [...(single !== undefined && single !== '' ? [single] : []), ...(list ?? [])].map((t) => String(t).trim());
}

type SideMerge = { keep: true } | { keep: false; prefixes: string[] } | { cannot: string };

/**
 * One side of NetGuard's rule as a person left it, merged with what the side needs: kept as is when it
 * already holds every needed address (`*`, a tag that covers them, wider CIDRs), else the needed CIDRs
 * are added to the person's. A tag cannot share a list with addresses in ARM: then a person decides.
 */
function mergeSide(tokens: string[], asgs: readonly unknown[] | undefined, needed: AddressSet, neededPrefixes: string[], virtualNetwork: AddressSet, what: string): SideMerge {
  if ((asgs ?? []).length > 0) return { cannot: `its ${what} were changed to application security groups` };
  const side = resolveRuleSide(undefined, tokens, undefined, { virtualNetwork });
  if (side.definite.containsAll(needed)) return { keep: true };
  if (tokens.some((t) => !isAddressPrefix(t))) return { cannot: `its ${what} were changed to ${tokens.join(', ')}, which cannot be listed together with addresses` };
  return { keep: false, prefixes: sortPrefixes([...tokens, ...neededPrefixes.filter((p) => !side.definite.containsAll(AddressSet.fromPrefixes([p])))]) };
}

/**
 * NetGuard's own rule is there but no longer denies what it must. Whatever a person added to it
 * (sources, ports, protocols) is kept; only what is missing is put back, and it is never moved later
 * (a Deny moved behind an Allow opens what that Allow admits). If moving it earlier, or turning it
 * back into a Deny, would also cut access beyond the AKS SSH flows, a person decides.
 */
function planRepair(
  nsg: ArmNetworkSecurityGroup,
  existing: ArmSecurityRule,
  desired: SecurityRuleProperties,
  usedPriorities: ReadonlySet<number>,
  sources: AddressSet,
  groups: readonly DestinationGroup[],
  beats: string,
  others: AddressSet = AddressSet.empty(),
): SecurityRuleChange | NoPlan {
  const e = existing.properties ?? ({} as SecurityRuleProperties);
  const cannot = (why: string): NoPlan => ({
    kind: 'none',
    reason: `NetGuard's rule ${MANAGED_SSH_RULE_NAME} in the NSG ${nsg.name} was edited and ${why}, so NetGuard cannot put the AKS subnets back into it without dropping what was added: add them by hand, or delete the rule and NetGuard recreates it.`,
  });
  if (String(e.direction ?? '').toLowerCase() === 'outbound') return cannot('now applies to outbound traffic');
  const virtualNetwork = groups.reduce((acc, g) => acc.union(g.virtualNetwork), AddressSet.empty());
  const destinations = groups.reduce((acc, g) => acc.union(g.destinations), AddressSet.empty());
  const after: SecurityRuleProperties = readOnlyStripped(e);
  after.description = e.description ?? desired.description;
  after.access = 'Deny';
  after.direction = 'Inbound';
  const added: string[] = [];

  const src = mergeSide(sideTokens(e.sourceAddressPrefix, e.sourceAddressPrefixes), e.sourceApplicationSecurityGroups, sources, desired.sourceAddressPrefixes ?? [], virtualNetwork, 'sources');
  if ('cannot' in src) return cannot(src.cannot);
  if (!src.keep) {
    delete after.sourceAddressPrefix;
    after.sourceAddressPrefixes = src.prefixes;
    added.push('the AKS sources');
  }
  const dst = mergeSide(
    sideTokens(e.destinationAddressPrefix, e.destinationAddressPrefixes),
    e.destinationApplicationSecurityGroups,
    destinations,
    destinations.toCidrs(),
    virtualNetwork,
    'destinations',
  );
  if ('cannot' in dst) return cannot(dst.cannot);
  if (!dst.keep) {
    const tokens = sideTokens(e.destinationAddressPrefix, e.destinationAddressPrefixes);
    delete after.destinationAddressPrefix;
    // Nothing there at all: the usual VirtualNetwork; else the node subnets next to the person's.
    if (tokens.length === 0 && desired.destinationAddressPrefix) after.destinationAddressPrefix = desired.destinationAddressPrefix;
    else if (tokens.length === 0) after.destinationAddressPrefixes = desired.destinationAddressPrefixes;
    else after.destinationAddressPrefixes = dst.prefixes;
    added.push('the node subnets as destinations');
  }
  const ports = portRangesOf(e.destinationPortRange, e.destinationPortRanges).ranges;
  if (!ports.some((r) => r.from <= SSH_PORT && SSH_PORT <= r.to)) {
    const merged = mergePortRanges([...ports, { from: SSH_PORT, to: SSH_PORT }]);
    delete after.destinationPortRange;
    delete after.destinationPortRanges;
    if (merged.length === 1) after.destinationPortRange = formatPortRange(merged[0]);
    else after.destinationPortRanges = merged.map(formatPortRange);
    added.push('port 22');
  }
  const sourcePorts = portRangesOf(e.sourcePortRange, e.sourcePortRanges);
  const anySourcePort = sourcePorts.invalid.length === 0 && (sourcePorts.ranges.length === 0 || coversAllPorts(sourcePorts.ranges));
  if (!anySourcePort) {
    delete after.sourcePortRanges;
    after.sourcePortRange = '*';
    added.push('every source port');
  }
  const protocol = String(e.protocol ?? '').toLowerCase();
  if (protocol !== 'tcp' && protocol !== '*' && protocol !== 'any') {
    after.protocol = '*';
    added.push('TCP');
  }
  if (String(e.access ?? '').toLowerCase() !== 'deny') added.push('Deny');
  // Never later than where it is: only earlier, when an Allow before it admits the AKS sources.
  const current = Number(e.priority);
  const keepPlace = Number.isInteger(current) && current <= desired.priority && !usedPriorities.has(current);
  after.priority = keepPlace ? current : desired.priority;
  const moved = after.priority !== current;

  // Whatever the repaired rule then denies beyond inbound TCP/22 from the AKS subnets to the nodes is
  // someone's access being cut, and that needs a person: moved earlier, it beats the Allows it passes;
  // in its own place, the person's additions (every port, say) now also apply to the AKS sources put
  // back, which would cut node-to-node traffic with nobody asked.
  // What NetGuard means to deny: SSH from the AKS subnets to anything behind this NSG except the other
  // subnets sharing it (inbound traffic to addresses no subnet of this NSG holds never meets it).
  const intendedProps: SecurityRuleProperties = { ...desired, priority: after.priority };
  if (!others.isEmpty()) {
    delete intendedProps.destinationAddressPrefix;
    intendedProps.destinationAddressPrefixes = AddressSet.all().subtract(others).toCidrs();
  }
  const intended: ArmSecurityRule = { name: MANAGED_SSH_RULE_NAME, properties: intendedProps };
  const written: ArmSecurityRule = { ...existing, properties: after };
  const beforeRules = rulesOfNsg(nsg);
  const afterRules = rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: (nsg.properties?.securityRules ?? []).map((r) => (r === existing ? written : r)) } });
  // The same holds when a person had turned it into an Allow: making it a Deny again cuts everything
  // that Allow let through (with `*` everywhere, all traffic to the subnet).
  const cut = new Set<string>();
  let tooComplex = false;
  for (const g of groups) {
    const diff = compareNsgAccess(beforeRules, afterRules, { virtualNetwork: g.virtualNetwork }, { intended: [intended] });
    if (diff.tooComplex) tooComplex = true;
    for (const f of diff.narrowedBeyondIntended.slice(0, 2)) cut.add(describeFlowBox(f));
  }
  const needsPerson = tooComplex || cut.size > 0;
  const what = added.length ? `add back ${listNames(added)}` : 'keep its content';
  const where = moved ? ` and move it to priority ${after.priority}${beats}` : ` at priority ${after.priority}`;
  const why = needsPerson
    ? ` A person must approve, because ${tooComplex ? 'NetGuard cannot tell exactly whose access that changes' : `it would also deny ${[...cut].join('; ')}, which is allowed now`}.`
    : '';
  return {
    kind: 'security-rule',
    nsgId: nsg.id,
    ruleName: existing.name,
    ifMatch: existing.etag,
    before: existing.properties,
    after,
    needsPerson,
    summary: `Repair the Deny rule ${MANAGED_SSH_RULE_NAME} in the NSG ${nsg.name}: ${what}${where}, keeping what a person added to it (inbound TCP/22 from ${cidrList(sources.toCidrs())} to the nodes is denied).${why}`,
  };
}

function refOf(rule: ArmSecurityRule) {
  return { name: rule.name, priority: rule.properties.priority, access: 'Allow' as const, isDefault: false };
}

/** Takes the AKS sources out of the Allow that leaves no free priority before it. */
function planNarrowing(nsg: ArmNetworkSecurityGroup, blocking: ArmSecurityRule, sources: AddressSet, groups: readonly DestinationGroup[]): SecurityRuleChange | NoPlan {
  const p = blocking.properties;
  const where = `the Allow ${describeRule(refOf(blocking))} in the NSG ${nsg.name}`;
  if ((p.sourceApplicationSecurityGroups ?? []).length > 0) {
    return { kind: 'none', reason: `No priority is free before ${where}, and it selects its sources by application security group, so NetGuard cannot narrow it: take the AKS subnets out of it by hand.` };
  }
  const virtualNetwork = groups.reduce((acc, g) => acc.union(g.virtualNetwork), AddressSet.empty());
  // Tags NetGuard can expand become addresses; other service tags hold no VNet address and stay.
  let known = AddressSet.empty();
  const kept: string[] = [];
  for (const token of [...(p.sourceAddressPrefix ? [p.sourceAddressPrefix] : []), ...(p.sourceAddressPrefixes ?? [])]) {
    const side = resolveRuleSide(token, undefined, undefined, { virtualNetwork });
    if (side.unknownTags.length > 0 || side.invalid.length > 0) kept.push(token);
    else known = known.union(side.definite);
  }
  const narrowed = [...known.subtract(sources).toCidrs(), ...kept];
  const after = readOnlyStripped(p);
  let change: string;
  if (narrowed.length > 0) {
    delete after.sourceAddressPrefix;
    after.sourceAddressPrefixes = narrowed;
    change = `its sources become ${cidrList(narrowed)} (the AKS subnets ${cidrList(sources.toCidrs())} removed)`;
  } else {
    // The Allow admits only AKS sources: take port 22 out of it instead, or turn it into a Deny.
    const ports = withoutPort(portRangesOf(p.destinationPortRange, p.destinationPortRanges).ranges, SSH_PORT);
    if (ports.length > 0) {
      delete after.destinationPortRange;
      after.destinationPortRanges = ports.map(formatPortRange);
      change = `it only admits the AKS subnets, so port 22 is removed from it (ports ${after.destinationPortRanges.join(', ')})`;
    } else {
      after.access = 'Deny';
      change = 'it only admits SSH from the AKS subnets, so it becomes a Deny';
    }
  }
  return {
    kind: 'security-rule',
    nsgId: nsg.id,
    ruleName: blocking.name,
    ifMatch: blocking.etag,
    before: blocking.properties,
    after,
    needsPerson: true,
    summary: `No priority is free for ${MANAGED_SSH_RULE_NAME} before ${where}, so NetGuard proposes to narrow that Allow: ${change}. A person must approve, because it changes who can reach the nodes; the Deny rule follows once it is narrowed.`,
  };
}

function plan(j: Judgement, observation: ClusterObservation): SecurityRuleChange | NoPlan {
  const { topology, cluster } = observation;
  const nsg = topology.nsg(j.targetId);
  if (nsg) return planNodeSshDeny(nsg, topology, cluster);
  const subnet = topology.clusterSubnets(cluster).nodeSubnets.find((s) => sameId(s.id, j.targetId));
  if (subnet?.found && !subnet.nsgId) {
    // The judgement already says what is missing; the reason says why NetGuard stops there.
    return { kind: 'none', reason: 'NetGuard cannot choose an NSG for a subnet, so it only reports this.' };
  }
  // The subnet or its NSG could not be read (the judgement says which): nothing is changed blind.
  return { kind: 'none', reason: 'NetGuard changes nothing it cannot read, so it only reports this.' };
}

export const nodeSshDeny: Control = {
  id: 'node-ssh-deny',
  severity: 'enforced',
  defaultMode: 'auto',
  description: 'Every NSG on a node subnet denies inbound SSH (TCP/22) from the cluster\u2019s node and pod subnets to the nodes.',
  // The cluster's pools (which subnets) are part of the topology: a network event re-reads all it needs.
  needs: { reads: ['nsg-topology'], changes: ['security-rule'] },
  evaluate,
  plan,
};
