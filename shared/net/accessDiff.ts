// Exact comparison of what two NSG rule lists let through, over every flow: both directions, every
// protocol, every source and destination address, every source and destination port. The flow space
// is cut into boxes (a product of a direction set, a protocol set, two address sets and two port
// sets); the rules are walked in priority order over boxes, first match wins, as Azure decides. No
// sampling: what is reported as widened is exactly the set of flows that go from Deny to Allow.
//
// What NetGuard cannot see is not guessed but enumerated. Which NICs an application security group
// holds, what an unknown service tag stands for, and how far the VirtualNetwork tag reaches beyond the
// VNet's own space (peerings, gateways) are unknowns ("atoms"). An address either is in an atom or is
// not; the comparison is made for every combination of answers for the source and for the destination
// (the same atoms appear before and after, so their answers are shared). A change that widens under
// any combination is reported, so a verdict "widens nothing" holds whatever the atoms really hold.
import type { ArmSecurityRule } from '../azure/armTypes';
import { AddressSet, isAddressPrefix } from './addressSet';
import { AZURE_LOAD_BALANCER_ADDRESS } from './nsgEvaluator';
import { MAX_PORT, MIN_PORT, formatPortRange, intersectPortRanges, portRangesOf, subtractPortRanges, type PortRange } from './ports';

const DIRECTIONS = ['Inbound', 'Outbound'] as const;
/** The protocols an NSG rule names ('*' is all of them); other spellings get a bit of their own. */
const BASE_PROTOCOLS = ['tcp', 'udp', 'icmp', 'esp', 'ah'];
const ALL_PORTS: PortRange[] = [{ from: MIN_PORT, to: MAX_PORT }];
/** Beyond this many unknowns (2^n combinations) the comparison is refused rather than slow. */
export const MAX_UNKNOWNS = 10;

/** What the NSG's place in the network says about the VirtualNetwork tag. */
export interface AccessContext {
  /** Addresses the VirtualNetwork tag surely holds here (the VNet's space and its peered spaces). */
  virtualNetwork: AddressSet;
}

/** A box of flows, as a person reads it. */
export interface FlowBox {
  directions: string[];
  protocols: string[];
  sources: AddressSet;
  destinations: AddressSet;
  sourcePorts: PortRange[];
  destinationPorts: PortRange[];
  /** The answers about unknowns under which these flows change (empty: always). */
  assumptions: string[];
}

export interface AccessDiff {
  /** Flows denied before and allowed after. */
  widened: FlowBox[];
  /** Flows allowed before and denied after. */
  narrowed: FlowBox[];
  /** The part of `narrowed` outside the flows the caller meant to deny (options.intended). */
  narrowedBeyondIntended: FlowBox[];
  /** Set when the rules hold too many unknowns to compare: nothing else is then meaningful. */
  tooComplex?: string;
}

export interface AccessDiffOptions {
  /** Rules whose flows the change is meant to deny: narrowing inside them is expected. */
  intended?: readonly ArmSecurityRule[];
  /** Stop after this many widened boxes (a gate needs one). Default: all. */
  maxWitnesses?: number;
}

interface Box {
  dir: number;
  proto: number;
  src: AddressSet;
  dst: AddressSet;
  sport: PortRange[];
  dport: PortRange[];
}

interface Side {
  definite: AddressSet;
  vnet: boolean;
  internet: boolean;
  /** Keys of ASGs, unknown tags and unreadable values (atoms other than the VirtualNetwork one). */
  atoms: string[];
}

interface Compiled {
  access: 'Allow' | 'Deny';
  priority: number;
  isDefault: boolean;
  index: number;
  dir: number;
  proto: number;
  src: Side;
  dst: Side;
  sport: PortRange[];
  dport: PortRange[];
}

const VNET_ATOM = 'the VirtualNetwork tag';

function isDefaultRule(rule: ArmSecurityRule): boolean {
  return /\/defaultSecurityRules\//i.test(rule.id ?? '');
}

function sideOf(prefix: string | undefined, prefixes: readonly string[] | undefined, asgs: readonly { id?: string }[] | undefined): Side {
  let definite = AddressSet.empty();
  let vnet = false;
  let internet = false;
  const atoms: string[] = [];
  for (const raw of [...(prefix !== undefined && prefix !== '' ? [prefix] : []), ...(prefixes ?? [])]) {
    const token = String(raw).trim();
    const lower = token.toLowerCase();
    if (lower === '*' || lower === 'any') definite = AddressSet.all();
    else if (lower === 'virtualnetwork') vnet = true;
    else if (lower === 'internet') internet = true;
    else if (lower === 'azureloadbalancer') definite = definite.union(AddressSet.fromPrefixes([AZURE_LOAD_BALANCER_ADDRESS]));
    else if (isAddressPrefix(token)) definite = definite.union(AddressSet.fromPrefixes([token]));
    // Another service tag, or a value NetGuard cannot read: it may hold any address.
    else atoms.push(`the service tag ${token}`);
  }
  for (const asg of asgs ?? []) atoms.push(`the application security group ${String(asg?.id ?? '?').split('/').pop()}`);
  return { definite, vnet, internet, atoms };
}

function protocolIndex(universe: string[], protocol: string): number {
  let i = universe.indexOf(protocol);
  if (i < 0) {
    universe.push(protocol);
    i = universe.length - 1;
  }
  return i;
}

function compile(rules: readonly ArmSecurityRule[], universe: string[], offset: number): Compiled[] {
  return rules.map((rule, i) => {
    const p = rule.properties ?? ({} as ArmSecurityRule['properties']);
    const direction = String(p.direction ?? '').toLowerCase();
    const protocol = String(p.protocol ?? '').trim().toLowerCase();
    const proto = protocol === '*' || protocol === 'any' ? -1 : protocol === '' ? 0 : 1 << protocolIndex(universe, protocol);
    const srcPorts = portRangesOf(p.sourcePortRange, p.sourcePortRanges);
    // Absent source ports mean any (as the evaluator reads them); unreadable values match nothing.
    const sport = srcPorts.ranges.length === 0 && srcPorts.invalid.length === 0 ? ALL_PORTS : srcPorts.ranges;
    return {
      access: String(p.access ?? '').toLowerCase() === 'allow' ? 'Allow' : 'Deny',
      priority: Number(p.priority ?? 0),
      isDefault: isDefaultRule(rule),
      index: offset + i,
      dir: direction === 'inbound' ? 1 : direction === 'outbound' ? 2 : 0,
      proto,
      src: sideOf(p.sourceAddressPrefix, p.sourceAddressPrefixes, p.sourceApplicationSecurityGroups),
      dst: sideOf(p.destinationAddressPrefix, p.destinationAddressPrefixes, p.destinationApplicationSecurityGroups),
      sport,
      dport: portRangesOf(p.destinationPortRange, p.destinationPortRanges).ranges,
    };
  });
}

function order(rules: Compiled[]): Compiled[] {
  return [...rules].sort((a, b) => a.priority - b.priority || Number(a.isDefault) - Number(b.isDefault) || a.index - b.index);
}

/**
 * The addresses one side matches when the unknowns answer `truths` (the atoms that hold); with
 * `truths` undefined, every address it could match under any answer (a superset, to prune rules).
 */
function sideSet(side: Side, truths: ReadonlySet<string> | undefined, context: AccessContext): AddressSet {
  let set = side.definite;
  if (!truths) return side.vnet || side.internet || side.atoms.length > 0 ? AddressSet.all() : set;
  const inVnet = truths.has(VNET_ATOM);
  // An address the VNet's own space holds is in the tag whatever the answer; beyond it, the answer decides.
  if (side.vnet) set = set.union(inVnet ? AddressSet.all() : context.virtualNetwork);
  if (side.internet && !inVnet) set = set.union(AddressSet.all().subtract(context.virtualNetwork));
  if (side.atoms.some((a) => truths.has(a))) set = AddressSet.all();
  return set;
}

function boxesOf(rule: Compiled, srcTruths: ReadonlySet<string> | undefined, dstTruths: ReadonlySet<string> | undefined, context: AccessContext, icmpBit: number): Box[] {
  if (rule.dir === 0 || rule.proto === 0 || rule.sport.length === 0) return [];
  const srcAll = sideSet(rule.src, srcTruths, context);
  if (srcAll.isEmpty()) return [];
  const dstAll = sideSet(rule.dst, dstTruths, context);
  if (dstAll.isEmpty()) return [];
  const out: Box[] = [];
  // A flow joins two addresses of one family: an IPv4 source never reaches an IPv6 destination.
  for (const family of [4, 6] as const) {
    const src = srcAll.only(family);
    const dst = dstAll.only(family);
    if (src.isEmpty() || dst.isEmpty()) continue;
    const base = { dir: rule.dir, src, dst, sport: rule.sport };
    // ICMP has no ports: a rule naming ICMP matches it whatever its destination ports say.
    const ported = rule.proto & ~icmpBit;
    if (ported !== 0 && rule.dport.length > 0) out.push({ ...base, proto: ported, dport: rule.dport });
    if (rule.proto & icmpBit) out.push({ ...base, proto: icmpBit, dport: ALL_PORTS });
  }
  return out;
}

function intersect(a: Box, b: Box): Box | undefined {
  const dir = a.dir & b.dir;
  if (!dir) return undefined;
  const proto = a.proto & b.proto;
  if (!proto) return undefined;
  const sport = intersectPortRanges(a.sport, b.sport);
  if (!sport.length) return undefined;
  const dport = intersectPortRanges(a.dport, b.dport);
  if (!dport.length) return undefined;
  const src = a.src.intersect(b.src);
  if (src.isEmpty()) return undefined;
  const dst = a.dst.intersect(b.dst);
  if (dst.isEmpty()) return undefined;
  return { dir, proto, src, dst, sport, dport };
}

/** a minus b as disjoint boxes: peel off one dimension at a time. */
function subtract(a: Box, b: Box): Box[] {
  const inner = intersect(a, b);
  if (!inner) return [a];
  const out: Box[] = [];
  let core: Box = a;
  const dirOut = a.dir & ~b.dir;
  if (dirOut) out.push({ ...core, dir: dirOut });
  core = { ...core, dir: inner.dir };
  const protoOut = a.proto & ~b.proto;
  if (protoOut) out.push({ ...core, proto: protoOut });
  core = { ...core, proto: inner.proto };
  const sportOut = subtractPortRanges(a.sport, b.sport);
  if (sportOut.length) out.push({ ...core, sport: sportOut });
  core = { ...core, sport: inner.sport };
  const dportOut = subtractPortRanges(a.dport, b.dport);
  if (dportOut.length) out.push({ ...core, dport: dportOut });
  core = { ...core, dport: inner.dport };
  const srcOut = a.src.subtract(b.src);
  if (!srcOut.isEmpty()) out.push({ ...core, src: srcOut });
  core = { ...core, src: inner.src };
  const dstOut = a.dst.subtract(b.dst);
  if (!dstOut.isEmpty()) out.push({ ...core, dst: dstOut });
  return out;
}

function subtractAll(region: Box[], cut: Box[]): Box[] {
  let rest = region;
  for (const c of cut) rest = rest.flatMap((r) => subtract(r, c));
  return rest;
}

/** First match wins over the region: which part each rule allows or denies (unmatched = denied). */
function decide(ruleBoxes: Array<{ allow: boolean; boxes: Box[] }>, region: Box[]): { allow: Box[]; deny: Box[] } {
  let remaining = region;
  const allow: Box[] = [];
  const deny: Box[] = [];
  for (const rule of ruleBoxes) {
    for (const rb of rule.boxes) {
      const next: Box[] = [];
      for (const r of remaining) {
        const hit = intersect(r, rb);
        if (!hit) {
          next.push(r);
          continue;
        }
        (rule.allow ? allow : deny).push(hit);
        next.push(...subtract(r, rb));
      }
      remaining = next;
    }
    if (remaining.length === 0) break;
  }
  deny.push(...remaining);
  return { allow, deny };
}

function signature(rule: ArmSecurityRule): string {
  const p = rule.properties ?? ({} as ArmSecurityRule['properties']);
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return JSON.stringify([
    String(p.protocol ?? '').toLowerCase(),
    p.sourcePortRange ?? '',
    list(p.sourcePortRanges),
    p.destinationPortRange ?? '',
    list(p.destinationPortRanges),
    p.sourceAddressPrefix ?? '',
    list(p.sourceAddressPrefixes),
    p.destinationAddressPrefix ?? '',
    list(p.destinationAddressPrefixes),
    (p.sourceApplicationSecurityGroups ?? []).map((g) => String(g?.id ?? '').toLowerCase()),
    (p.destinationApplicationSecurityGroups ?? []).map((g) => String(g?.id ?? '').toLowerCase()),
    String(p.access ?? '').toLowerCase(),
    p.priority,
    String(p.direction ?? '').toLowerCase(),
  ]);
}

/** Indexes (into before, after) of the rules that are not the same on both sides. */
function changedRules(before: readonly ArmSecurityRule[], after: readonly ArmSecurityRule[]): { before: Set<number>; after: Set<number> } {
  const key = (r: ArmSecurityRule) => `${isDefaultRule(r) ? 'd' : 'c'}|${String(r.name).toLowerCase()}|${signature(r)}`;
  const count = (rules: readonly ArmSecurityRule[]) => {
    const m = new Map<string, number>();
    for (const r of rules) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
    return m;
  };
  const b = count(before);
  const a = count(after);
  const changed = { before: new Set<number>(), after: new Set<number>() };
  before.forEach((r, i) => {
    if ((a.get(key(r)) ?? 0) !== b.get(key(r))) changed.before.add(i);
  });
  after.forEach((r, i) => {
    if ((b.get(key(r)) ?? 0) !== a.get(key(r))) changed.after.add(i);
  });
  return changed;
}

function toFlowBox(box: Box, universe: string[], assumptions: string[]): FlowBox {
  const protocols = universe.filter((_, i) => box.proto & (1 << i)).map((p) => (p.length <= 4 ? p.charAt(0).toUpperCase() + p.slice(1) : p));
  return {
    directions: DIRECTIONS.filter((_, i) => box.dir & (1 << i)),
    protocols,
    sources: box.src,
    destinations: box.dst,
    sourcePorts: box.sport,
    destinationPorts: box.dport,
    assumptions,
  };
}

function cidrs(set: AddressSet, max = 4): string {
  // Boxes hold one family each (flows never mix them).
  if (set.equals(AddressSet.allOf(4))) return 'any IPv4 address';
  if (set.equals(AddressSet.allOf(6))) return 'any IPv6 address';
  const all = set.toCidrs();
  return all.slice(0, max).join(', ') + (all.length > max ? ` and ${all.length - max} more` : '');
}

/** "Inbound Tcp from 198.51.100.0/24 to 10.0.0.0/22, destination port 22". */
export function describeFlowBox(f: FlowBox): string {
  const ports = (r: PortRange[]) => r.map(formatPortRange).join(', ');
  const dports = f.destinationPorts.length === 1 && formatPortRange(f.destinationPorts[0]) === '*' ? 'any port' : `port ${ports(f.destinationPorts)}`;
  const sports = f.sourcePorts.length === 1 && formatPortRange(f.sourcePorts[0]) === '*' ? '' : ` from source port ${ports(f.sourcePorts)}`;
  const when = f.assumptions.length ? ` (when ${f.assumptions.join(' and ')})` : '';
  return `${f.directions.join('/')} ${f.protocols.join('/')} from ${cidrs(f.sources)} to ${cidrs(f.destinations)}, ${dports}${sports}${when}`;
}

function subsets(items: string[]): Array<Set<string>> {
  const out: Array<Set<string>> = [];
  for (let mask = 0; mask < 1 << items.length; mask++) out.push(new Set(items.filter((_, i) => mask & (1 << i))));
  return out;
}

function describeTruths(side: 'source' | 'destination', atoms: string[], truths: Set<string>): string[] {
  const out: string[] = [];
  for (const atom of atoms) {
    // Only the answers that reach beyond what NetGuard sees are worth saying; "not in it" is the plain reading.
    if (atom === VNET_ATOM) {
      if (truths.has(atom)) out.push(`the ${side} is in the VirtualNetwork tag beyond the VNet's own space`);
    } else if (truths.has(atom)) {
      out.push(`the ${side} is in ${atom}`);
    }
  }
  return out;
}

/**
 * Compares the effective access of two rule lists (custom and default rules together) over every flow.
 * Exact for addresses and ports; unknowns (ASGs, unknown tags, the reach of VirtualNetwork) are
 * enumerated, so `widened` is empty only if no answer about them lets the change open anything.
 */
export function compareNsgAccess(
  before: readonly ArmSecurityRule[],
  after: readonly ArmSecurityRule[],
  context: AccessContext,
  options: AccessDiffOptions = {},
): AccessDiff {
  const universe = [...BASE_PROTOCOLS];
  const icmpBit = 1 << universe.indexOf('icmp');
  const b = compile(before, universe, 0);
  const a = compile(after, universe, before.length);
  const intended = compile(options.intended ?? [], universe, before.length + after.length);
  const all = -1 >>> (32 - universe.length);
  for (const r of [...b, ...a, ...intended]) if (r.proto === -1) r.proto = all;
  const changed = changedRules(before, after);
  const touched = [...b.filter((_, i) => changed.before.has(i)), ...a.filter((_, i) => changed.after.has(i))];
  const result: AccessDiff = { widened: [], narrowed: [], narrowedBeyondIntended: [] };
  if (touched.length === 0) return result;

  // A rule that cannot match any flow the changed rules could match, whatever the unknowns hold,
  // decides nothing that differs: it is left out, and so are the unknowns only it uses (real NSGs
  // carry many service tags on rules far from the change).
  const widest: Box[] = touched.flatMap((r) => boxesOf(r, undefined, undefined, context, icmpBit));
  const relevant = (r: Compiled) => boxesOf(r, undefined, undefined, context, icmpBit).some((x) => widest.some((y) => intersect(x, y)));
  const bRelevant = b.filter(relevant);
  const aRelevant = a.filter(relevant);
  // Only unknowns used by some rule that matters count; each side answers for itself.
  const atomsOf = (pick: (r: Compiled) => Side) => {
    const s = new Set<string>();
    for (const r of [...bRelevant, ...aRelevant, ...intended]) {
      const side = pick(r);
      if (side.vnet || side.internet) s.add(VNET_ATOM);
      for (const atom of side.atoms) s.add(atom);
    }
    return [...s].sort();
  };
  const srcAtoms = atomsOf((r) => r.src);
  const dstAtoms = atomsOf((r) => r.dst);
  if (srcAtoms.length + dstAtoms.length > MAX_UNKNOWNS) {
    result.tooComplex = `the rules use ${srcAtoms.length + dstAtoms.length} application security groups and service tags that NetGuard cannot resolve to addresses, too many to compare every case`;
    return result;
  }
  const sortedBefore = order(bRelevant);
  const sortedAfter = order(aRelevant);
  const max = options.maxWitnesses ?? Infinity;

  for (const srcTruths of subsets(srcAtoms)) {
    for (const dstTruths of subsets(dstAtoms)) {
      const boxes = (rules: Compiled[]) => rules.map((r) => ({ allow: r.access === 'Allow', boxes: boxesOf(r, srcTruths, dstTruths, context, icmpBit) }));
      // Outside the flows of the changed rules, both lists decide alike: compare only inside them.
      const region: Box[] = [];
      for (const r of touched) for (const box of boxesOf(r, srcTruths, dstTruths, context, icmpBit)) region.push(...subtractAll([box], region));
      if (region.length === 0) continue;
      const assumptions = [...describeTruths('source', srcAtoms, srcTruths), ...describeTruths('destination', dstAtoms, dstTruths)];
      const beforeDecision = decide(boxes(sortedBefore), region);
      const afterRules = boxes(sortedAfter);
      for (const denied of beforeDecision.deny) {
        for (const opened of decide(afterRules, [denied]).allow) {
          result.widened.push(toFlowBox(opened, universe, assumptions));
          if (result.widened.length >= max) return result;
        }
      }
      const intendedBoxes = intended.flatMap((r) => boxesOf(r, srcTruths, dstTruths, context, icmpBit));
      for (const allowed of beforeDecision.allow) {
        for (const closed of decide(afterRules, [allowed]).deny) {
          result.narrowed.push(toFlowBox(closed, universe, assumptions));
          for (const beyond of subtractAll([closed], intendedBoxes)) result.narrowedBeyondIntended.push(toFlowBox(beyond, universe, assumptions));
        }
      }
    }
  }
  return result;
}
