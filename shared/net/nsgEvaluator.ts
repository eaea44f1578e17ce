// The exact NSG decision for a set of flows, computed as Azure does: rules sorted by priority, the
// first matching rule wins. The flows are every (source address, destination address) pair of a
// (sources × destinations) region; the walk keeps the still-undecided part as rectangles, so a rule
// that covers only part of the region decides only that part, whatever way CIDRs overlap.
import type { ArmNetworkSecurityGroup, ArmRef, ArmSecurityRule } from '../azure/armTypes';
import { AddressSet, isAddressPrefix } from './addressSet';
import { containsPort, coversAllPorts, portRangesOf } from './ports';

export type NsgDirection = 'Inbound' | 'Outbound';
export type NsgDecision = 'Deny' | 'Allow' | 'Mixed';

/** Every connection from any address of `sources` to any address of `destinations` (same family). */
export interface NsgFlow {
  direction: NsgDirection;
  /** Tcp, Udp or Icmp. */
  protocol: string;
  /** Destination port (ignored for Icmp). Any source port. */
  port: number;
  sources: AddressSet;
  destinations: AddressSet;
}

/** What the service tags stand for, seen from the NSG's subnets. */
export interface ServiceTagSpaces {
  /** The VirtualNetwork tag: the VNet's address space (and peered spaces). */
  virtualNetwork: readonly string[] | AddressSet;
}

export const AZURE_LOAD_BALANCER_ADDRESS = '168.63.129.16/32';

/** Private ranges: service tags other than VirtualNetwork never contain them. */
const PRIVATE_RANGES = AddressSet.fromPrefixes(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']);

export interface RuleRef {
  name: string;
  priority: number;
  access: 'Allow' | 'Deny';
  /** One of the NSG's defaultSecurityRules. */
  isDefault: boolean;
  id?: string;
}

/** One rectangle of flows: every source of `sources` to every destination of `destinations`. */
export interface FlowRegion {
  sources: AddressSet;
  destinations: AddressSet;
}

/** A rule together with the part of the flows it decides. */
export interface RuleOutcome {
  rule: RuleRef;
  parts: FlowRegion[];
  /** Sources of all parts together, as CIDRs. */
  sources: string[];
  /** Destinations of all parts together, as CIDRs. */
  destinations: string[];
  /** True when the rule only may match (application security groups, a restricted source port). */
  possible: boolean;
  /** Why the match is only possible. */
  uncertainty?: string;
}

/** A Deny that would match flows an earlier Allow already let through. */
export interface ShadowedDeny {
  rule: RuleRef;
  /** The earlier Allow rules that win over it. */
  shadowedBy: RuleRef[];
  sources: string[];
  destinations: string[];
}

export interface NsgAccessResult {
  decision: NsgDecision;
  /** Allow rules that decide (or may decide) some of the flows, in priority order. */
  allowedBy: RuleOutcome[];
  /** Deny rules that decide some of the flows, in priority order. */
  deniedBy: RuleOutcome[];
  shadowedDenies: ShadowedDeny[];
  /** Flows no rule matched (Azure denies them; real NSGs always end with DenyAllInBound/OutBound). */
  undecided: FlowRegion[];
  /** Human sentences: unknown tags, rules NetGuard could only partly judge, invalid values. */
  reasons: string[];
}

/** Azure's default rules, used when a payload leaves them out (every real NSG has them). */
export const AZURE_DEFAULT_SECURITY_RULES: readonly ArmSecurityRule[] = [
  defaultRule('AllowVnetInBound', 65000, 'Inbound', 'Allow', 'VirtualNetwork', 'VirtualNetwork'),
  defaultRule('AllowAzureLoadBalancerInBound', 65001, 'Inbound', 'Allow', 'AzureLoadBalancer', '*'),
  defaultRule('DenyAllInBound', 65500, 'Inbound', 'Deny', '*', '*'),
  defaultRule('AllowVnetOutBound', 65000, 'Outbound', 'Allow', 'VirtualNetwork', 'VirtualNetwork'),
  defaultRule('AllowInternetOutBound', 65001, 'Outbound', 'Allow', '*', 'Internet'),
  defaultRule('DenyAllOutBound', 65500, 'Outbound', 'Deny', '*', '*'),
];

function defaultRule(name: string, priority: number, direction: string, access: string, src: string, dst: string): ArmSecurityRule {
  return {
    name,
    properties: {
      protocol: '*',
      sourcePortRange: '*',
      destinationPortRange: '*',
      sourceAddressPrefix: src,
      destinationAddressPrefix: dst,
      access,
      priority,
      direction,
    },
  };
}

/** Every rule that applies to the NSG: its custom rules and its default rules (Azure's if absent). */
export function rulesOfNsg(nsg: ArmNetworkSecurityGroup): ArmSecurityRule[] {
  const defaults = nsg.properties?.defaultSecurityRules;
  return [...(nsg.properties?.securityRules ?? []), ...(defaults && defaults.length > 0 ? defaults : AZURE_DEFAULT_SECURITY_RULES)];
}

function tagSpace(tags: ServiceTagSpaces): AddressSet {
  return tags.virtualNetwork instanceof AddressSet ? tags.virtualNetwork : AddressSet.parse(tags.virtualNetwork).set;
}

function isDefaultRule(rule: ArmSecurityRule): boolean {
  return /\/defaultSecurityRules\//i.test(rule.id ?? '') || AZURE_DEFAULT_SECURITY_RULES.some((d) => d.name === rule.name && d.properties.priority === rule.properties?.priority);
}

export function ruleRef(rule: ArmSecurityRule): RuleRef {
  return {
    name: rule.name,
    priority: rule.properties?.priority,
    access: String(rule.properties?.access).toLowerCase() === 'allow' ? 'Allow' : 'Deny',
    isDefault: isDefaultRule(rule),
    ...(rule.id ? { id: rule.id } : {}),
  };
}

/** "allow-ssh (Allow at 200)" / "AllowVnetInBound (Allow at 65000, a default rule)". */
export function describeRule(ref: RuleRef): string {
  return `${ref.name} (${ref.access} at ${ref.priority}${ref.isDefault ? ', a default rule' : ''})`;
}

/** One side (source or destination) of a rule, resolved to addresses. */
export interface ResolvedRuleSide {
  /** Addresses the side surely contains. */
  definite: AddressSet;
  /** Addresses the side may contain (a superset of definite): ASGs and unknown tags widen it. */
  possible: AddressSet;
  /** Service tags NetGuard does not know. */
  unknownTags: string[];
  /** Strings that are neither an address nor a service tag. */
  invalid: string[];
  usesAsgs: boolean;
}

const TAG_SHAPE = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9-]+)*$/;

/** Resolves the prefixes, tags and ASGs of one side of a rule against the given tag spaces. */
export function resolveRuleSide(
  prefix: string | undefined,
  prefixes: readonly string[] | undefined,
  asgs: readonly ArmRef[] | undefined,
  tags: ServiceTagSpaces,
): ResolvedRuleSide {
  const vnet = tagSpace(tags);
  const outsideVnet = () => AddressSet.all().subtract(vnet);
  let definite = AddressSet.empty();
  let possible = AddressSet.empty();
  const unknownTags: string[] = [];
  const invalid: string[] = [];
  const tokens = [...(prefix !== undefined && prefix !== '' ? [prefix] : []), ...(prefixes ?? [])];
  for (const raw of tokens) {
    const token = String(raw).trim();
    const lower = token.toLowerCase();
    let set: AddressSet | undefined;
    if (lower === '*' || lower === 'any') set = AddressSet.all();
    else if (lower === 'virtualnetwork') set = vnet;
    else if (lower === 'internet') set = outsideVnet();
    else if (lower === 'azureloadbalancer') set = AddressSet.fromPrefixes([AZURE_LOAD_BALANCER_ADDRESS]);
    else if (isAddressPrefix(token)) set = AddressSet.fromPrefixes([token]);
    if (set) {
      definite = definite.union(set);
      possible = possible.union(set);
    } else if (TAG_SHAPE.test(token)) {
      // Another Azure service tag: its addresses are public Azure ranges, never inside this VNet.
      unknownTags.push(token);
      possible = possible.union(outsideVnet().subtract(PRIVATE_RANGES));
    } else {
      invalid.push(token);
    }
  }
  const usesAsgs = (asgs ?? []).length > 0;
  // Which NICs an application security group holds is not visible here: it may be any address.
  if (usesAsgs) possible = AddressSet.all();
  return { definite, possible, unknownTags, invalid, usesAsgs };
}

/** How a rule relates to a flow, before any address is looked at. */
export interface RuleFlowMatch {
  /** Direction, protocol and destination port match. */
  matches: boolean;
  source: ResolvedRuleSide;
  destination: ResolvedRuleSide;
  /** The rule matches only some source ports, so only some connections of each flow. */
  restrictedSourcePort: boolean;
  invalidPorts: string[];
}

export function matchRuleToFlow(rule: ArmSecurityRule, flow: Omit<NsgFlow, 'sources' | 'destinations'>, tags: ServiceTagSpaces): RuleFlowMatch {
  const p = rule.properties ?? ({} as ArmSecurityRule['properties']);
  const source = resolveRuleSide(p.sourceAddressPrefix, p.sourceAddressPrefixes, p.sourceApplicationSecurityGroups, tags);
  const destination = resolveRuleSide(p.destinationAddressPrefix, p.destinationAddressPrefixes, p.destinationApplicationSecurityGroups, tags);
  const directionOk = String(p.direction ?? '').toLowerCase() === flow.direction.toLowerCase();
  const ruleProtocol = String(p.protocol ?? '').toLowerCase();
  const protocolOk = ruleProtocol === '*' || ruleProtocol === flow.protocol.toLowerCase();
  const dstPorts = portRangesOf(p.destinationPortRange, p.destinationPortRanges);
  const srcPorts = portRangesOf(p.sourcePortRange, p.sourcePortRanges);
  const portOk = flow.protocol.toLowerCase() === 'icmp' || containsPort(dstPorts.ranges, flow.port);
  // Absent source ports mean any (ARM always returns one; hand-written payloads may not).
  const noSourcePorts = srcPorts.ranges.length === 0 && srcPorts.invalid.length === 0;
  return {
    matches: directionOk && protocolOk && portOk,
    source,
    destination,
    restrictedSourcePort: !noSourcePorts && !coversAllPorts(srcPorts.ranges),
    invalidPorts: [...dstPorts.invalid, ...srcPorts.invalid],
  };
}

function intersectRegion(r: FlowRegion, s: AddressSet, d: AddressSet): FlowRegion | undefined {
  const sources = r.sources.intersect(s);
  if (sources.isEmpty()) return undefined;
  const destinations = r.destinations.intersect(d);
  if (destinations.isEmpty()) return undefined;
  return { sources, destinations };
}

/** The region minus the rectangle s × d, as at most two rectangles. */
function subtractRegion(r: FlowRegion, s: AddressSet, d: AddressSet): FlowRegion[] {
  if (!intersectRegion(r, s, d)) return [r];
  const out: FlowRegion[] = [];
  const outsideSources = r.sources.subtract(s);
  if (!outsideSources.isEmpty()) out.push({ sources: outsideSources, destinations: r.destinations });
  const insideSources = r.sources.intersect(s);
  const outsideDestinations = r.destinations.subtract(d);
  if (!outsideDestinations.isEmpty()) out.push({ sources: insideSources, destinations: outsideDestinations });
  return out;
}

function outcome(rule: RuleRef, parts: FlowRegion[], possible: boolean, uncertainty?: string): RuleOutcome {
  const sources = parts.reduce((acc, p) => acc.union(p.sources), AddressSet.empty());
  const destinations = parts.reduce((acc, p) => acc.union(p.destinations), AddressSet.empty());
  return {
    rule,
    parts,
    sources: sources.toCidrs(),
    destinations: destinations.toCidrs(),
    possible,
    ...(uncertainty ? { uncertainty } : {}),
  };
}

function uncertaintyOf(m: RuleFlowMatch): string | undefined {
  const why: string[] = [];
  if (m.source.usesAsgs || m.destination.usesAsgs) why.push('it uses application security groups');
  if (m.restrictedSourcePort) why.push('it matches only some source ports');
  return why.length ? why.join(' and ') : undefined;
}

function sortRules(rules: readonly ArmSecurityRule[]): ArmSecurityRule[] {
  // Custom rules before default ones at equal priority (cannot happen in Azure; keeps order stable).
  return rules
    .map((rule, index) => ({ rule, index, isDefault: isDefaultRule(rule) }))
    .sort((a, b) => (a.rule.properties?.priority ?? 0) - (b.rule.properties?.priority ?? 0) || Number(a.isDefault) - Number(b.isDefault) || a.index - b.index)
    .map((x) => x.rule);
}

/** The initial region: only same-family pairs are flows. */
function flowRegions(flow: NsgFlow): FlowRegion[] {
  return ([4, 6] as const)
    .map((family) => ({ sources: flow.sources.only(family), destinations: flow.destinations.only(family) }))
    .filter((r) => !r.sources.isEmpty() && !r.destinations.isEmpty());
}

/**
 * Decides every flow of `flow` against the rules (custom and default together, any order).
 * Rules using application security groups or a restricted source port range only may match: such
 * an Allow is reported as possibly allowing, such a Deny is not counted as denying (conservative).
 */
export function evaluateNsgAccess(rules: readonly ArmSecurityRule[], flow: NsgFlow, tagSpaces: ServiceTagSpaces): NsgAccessResult {
  const tags: ServiceTagSpaces = { virtualNetwork: tagSpace(tagSpaces) };
  let remaining = flowRegions(flow);
  const allowedBy: RuleOutcome[] = [];
  const deniedBy: RuleOutcome[] = [];
  const shadowedDenies: ShadowedDeny[] = [];
  const reasons: string[] = [];
  /** Everything allowed (or possibly allowed) so far, with the rule that allowed it. */
  const allowedRegions: Array<{ region: FlowRegion; rule: RuleRef }> = [];
  const all = flowRegions(flow);

  for (const rule of sortRules(rules)) {
    const m = matchRuleToFlow(rule, flow, tags);
    if (!m.matches) continue;
    const ref = ruleRef(rule);
    const touchesFlows = all.some((r) => intersectRegion(r, m.source.possible, m.destination.possible));
    const unknownTags = [...m.source.unknownTags, ...m.destination.unknownTags];
    if (unknownTags.length > 0) {
      reasons.push(
        `Rule ${describeRule(ref)} uses the service tag${unknownTags.length > 1 ? 's' : ''} ${unknownTags.join(', ')}, which NetGuard treats as public Azure addresses outside the virtual network.`,
      );
    }
    const invalid = [...m.source.invalid, ...m.destination.invalid, ...m.invalidPorts];
    if (invalid.length > 0) {
      reasons.push(`Rule ${describeRule(ref)} has values that are not addresses, service tags or ports (${invalid.join(', ')}); NetGuard ignores them.`);
    }
    if (!touchesFlows) continue;

    const uncertainty = uncertaintyOf(m);
    const definiteSources = m.restrictedSourcePort ? AddressSet.empty() : m.source.definite;
    const definiteDestinations = m.restrictedSourcePort ? AddressSet.empty() : m.destination.definite;

    if (ref.access === 'Allow') {
      const definiteParts: FlowRegion[] = [];
      const possibleParts: FlowRegion[] = [];
      for (const r of remaining) {
        const d = intersectRegion(r, definiteSources, definiteDestinations);
        if (d) definiteParts.push(d);
        const p = intersectRegion(r, m.source.possible, m.destination.possible);
        if (p) possibleParts.push(...subtractRegion(p, definiteSources, definiteDestinations));
      }
      if (definiteParts.length > 0) allowedBy.push(outcome(ref, definiteParts, false));
      if (possibleParts.length > 0) {
        allowedBy.push(outcome(ref, possibleParts, true, uncertainty ?? 'it uses service tags NetGuard does not know'));
        reasons.push(`Rule ${describeRule(ref)} may allow some of these flows because ${uncertainty ?? 'of the service tags it uses'}; NetGuard counts it as allowing.`);
      }
      for (const region of [...definiteParts, ...possibleParts]) allowedRegions.push({ region, rule: ref });
      remaining = remaining.flatMap((r) => subtractRegion(r, definiteSources, definiteDestinations));
    } else {
      // A Deny that would match what an earlier Allow already let through is shadowed by it. The
      // default DenyAllInBound/OutBound is behind every Allow by design, so it is not reported.
      const shadowParts = (ref.isDefault ? [] : allowedRegions)
        .map((a) => ({ part: intersectRegion(a.region, m.source.possible, m.destination.possible), by: a.rule }))
        .filter((x): x is { part: FlowRegion; by: RuleRef } => !!x.part);
      if (shadowParts.length > 0) {
        const shadowedBy = [...new Map(shadowParts.map((x) => [x.by.name, x.by])).values()];
        const o = outcome(ref, shadowParts.map((x) => x.part), false);
        shadowedDenies.push({ rule: ref, shadowedBy, sources: o.sources, destinations: o.destinations });
      }
      const definiteParts = remaining.map((r) => intersectRegion(r, definiteSources, definiteDestinations)).filter((x): x is FlowRegion => !!x);
      if (definiteParts.length > 0) deniedBy.push(outcome(ref, definiteParts, false));
      if (uncertainty && remaining.some((r) => intersectRegion(r, m.source.possible, m.destination.possible))) {
        reasons.push(`Rule ${describeRule(ref)} may not deny these flows because ${uncertainty}; NetGuard does not count it.`);
      }
      remaining = remaining.flatMap((r) => subtractRegion(r, definiteSources, definiteDestinations));
    }
  }

  if (remaining.length > 0) {
    reasons.push('No rule matches some of the flows; Azure denies them.');
  }
  const allowedAny = allowedBy.length > 0;
  const deniedAny = deniedBy.length > 0 || remaining.length > 0;
  const decision: NsgDecision = !allowedAny ? 'Deny' : deniedAny ? 'Mixed' : 'Allow';
  return { decision, allowedBy, deniedBy, shadowedDenies, undecided: remaining, reasons };
}
