// A brute-force reference for NSG decisions, written to be obviously right rather than fast: one flow
// (direction, protocol, source address, destination address, source port, destination port) is
// decided by walking the rules in priority order and taking the first that matches, address by
// address, with ipaddr.js containment (not NetGuard's address sets). The property tests compare
// NetGuard's evaluator and write gate with it on small address spaces where a handful of
// representative addresses and ports stands for every address and port exactly: every prefix and port
// range the generators use is a union of the classes these representatives stand for.
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import type { ArmNetworkSecurityGroup, ArmSecurityRule, SecurityRuleProperties } from '../../shared/azure/armTypes';

export const VNET_SPACE = ['10.0.0.0/16'];
const LOAD_BALANCER = '168.63.129.16';

/** Prefixes the generators draw from. */
export const PREFIXES = [
  '10.0.0.0/30',
  '10.0.0.4/30',
  '10.0.0.0/29',
  '10.0.0.2/32',
  '10.0.1.0/30',
  '10.0.1.1/32',
  '198.51.100.4/30',
  '198.51.100.7/32',
  '10.0.0.0/24',
  '10.0.0.0/16',
  '10.0.0.0/8',
  '198.51.100.0/24',
  '2001:db8::/64',
];
export const TAGS = ['*', 'VirtualNetwork', 'Internet', 'AzureLoadBalancer'];
export const DEST_PORTS = ['22', '*', '0-21', '23-65535', '22-80', '80'];
export const SOURCE_PORTS = ['*', '1024-65535', '0-1023'];
export const PROTOCOLS = ['Tcp', 'Udp', 'Icmp', '*'];

const block = (base: string, n: number) => Array.from({ length: n }, (_, i) => base.replace(/\d+$/, (last) => String(Number(last) + i)));
/** One address per class of addresses the prefixes above cannot tell apart, and every address of the small blocks. */
export const ADDRESSES = [
  ...block('10.0.0.0', 8),
  ...block('10.0.1.0', 4),
  ...block('198.51.100.4', 4),
  '10.0.0.200',
  '10.0.7.1',
  '10.9.0.1',
  '198.51.100.200',
  '8.8.8.8',
  LOAD_BALANCER,
  '2001:db8::1',
  '2001:db9::1',
];
/** One port per class the port specs above cannot tell apart. */
export const PORTS = [21, 22, 23, 80, 81];
export const SRC_PORTS = [0, 1024];
export const FLOW_PROTOCOLS = ['tcp', 'udp', 'icmp'];
export const DIRECTIONS = ['inbound', 'outbound'];

// Memoized only for speed: the same few (address, prefix) pairs are asked millions of times.
const containment = new Map<string, boolean>();
function inCidr(address: string, cidr: string): boolean {
  const key = `${address} ${cidr}`;
  let hit = containment.get(key);
  if (hit === undefined) {
    hit = inCidrUncached(address, cidr);
    containment.set(key, hit);
  }
  return hit;
}

function inCidrUncached(address: string, cidr: string): boolean {
  const addr = ipaddr.parse(address);
  const [range, bits] = ipaddr.parseCIDR(cidr.includes('/') ? cidr : `${cidr}/${cidr.includes(':') ? 128 : 32}`);
  return addr.kind() === range.kind() && addr.match(range, bits);
}

function inSide(address: string, single: string | undefined, list: readonly string[] | undefined, vnet: readonly string[]): boolean {
  const tokens = [...(single ? [single] : []), ...(list ?? [])];
  return tokens.some((token) => {
    const t = token.toLowerCase();
    if (t === '*' || t === 'any') return true;
    if (t === 'virtualnetwork') return vnet.some((c) => inCidr(address, c));
    if (t === 'internet') return !vnet.some((c) => inCidr(address, c));
    if (t === 'azureloadbalancer') return address === LOAD_BALANCER;
    return inCidr(address, token);
  });
}

function inPorts(port: number, single: string | undefined, list: readonly string[] | undefined, absentMeansAny: boolean): boolean {
  const specs = [...(single ? [single] : []), ...(list ?? [])];
  if (specs.length === 0) return absentMeansAny;
  return specs.some((spec) => {
    if (spec === '*') return true;
    const [from, to] = spec.includes('-') ? spec.split('-').map(Number) : [Number(spec), Number(spec)];
    return from <= port && port <= to;
  });
}

export interface Flow {
  direction: string;
  protocol: string;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
}

export function ruleMatches(p: SecurityRuleProperties, f: Flow, vnet: readonly string[]): boolean {
  if (String(p.direction).toLowerCase() !== f.direction) return false;
  const proto = String(p.protocol).toLowerCase();
  if (proto !== '*' && proto !== f.protocol) return false;
  if (f.protocol !== 'icmp' && !inPorts(f.dstPort, p.destinationPortRange, p.destinationPortRanges, false)) return false;
  if (!inPorts(f.srcPort, p.sourcePortRange, p.sourcePortRanges, true)) return false;
  return inSide(f.src, p.sourceAddressPrefix, p.sourceAddressPrefixes, vnet) && inSide(f.dst, p.destinationAddressPrefix, p.destinationAddressPrefixes, vnet);
}

const isV6 = (a: string) => a.includes(':');

/** Every representative flow (same-family address pairs only). */
export function* allFlows(): Generator<Flow> {
  for (const direction of DIRECTIONS)
    for (const protocol of FLOW_PROTOCOLS)
      for (const src of ADDRESSES)
        for (const dst of ADDRESSES) {
          if (isV6(src) !== isV6(dst)) continue;
          for (const srcPort of SRC_PORTS) for (const dstPort of protocol === 'icmp' ? [0] : PORTS) yield { direction, protocol, src, dst, srcPort, dstPort };
        }
}

/** The rules in the order Azure walks them: priority, custom before default, then as listed. */
function ordered(rules: readonly ArmSecurityRule[]): ArmSecurityRule[] {
  return rules
    .map((rule, i) => ({ rule, i, d: /\/defaultSecurityRules\//i.test(rule.id ?? '') || rule.properties.priority >= 65000 ? 1 : 0 }))
    .sort((a, b) => a.rule.properties.priority - b.rule.properties.priority || a.d - b.d || a.i - b.i)
    .map((x) => x.rule);
}

/** First match wins; nothing matching is Deny. */
export function referenceDecision(rules: readonly ArmSecurityRule[], flow: Flow, vnet: readonly string[] = VNET_SPACE): 'Allow' | 'Deny' {
  for (const rule of ordered(rules)) if (ruleMatches(rule.properties, flow, vnet)) return String(rule.properties.access).toLowerCase() === 'allow' ? 'Allow' : 'Deny';
  return 'Deny';
}

/**
 * The first representative flow that `before` denies and `after` allows, or undefined. Same walk as
 * referenceDecision, with each rule's answer for each representative value worked out once up front
 * (the same ruleMatches pieces), because the loop runs over tens of thousands of flows.
 */
export function referenceWidening(before: readonly ArmSecurityRule[], after: readonly ArmSecurityRule[], vnet: readonly string[] = VNET_SPACE): Flow | undefined {
  const table = (rules: readonly ArmSecurityRule[]) =>
    ordered(rules).map(({ properties: p }) => ({
      allow: String(p.access).toLowerCase() === 'allow',
      direction: String(p.direction).toLowerCase(),
      protocol: String(p.protocol).toLowerCase(),
      src: ADDRESSES.map((a) => inSide(a, p.sourceAddressPrefix, p.sourceAddressPrefixes, vnet)),
      dst: ADDRESSES.map((a) => inSide(a, p.destinationAddressPrefix, p.destinationAddressPrefixes, vnet)),
      srcPort: SRC_PORTS.map((port) => inPorts(port, p.sourcePortRange, p.sourcePortRanges, true)),
      dstPort: PORTS.map((port) => inPorts(port, p.destinationPortRange, p.destinationPortRanges, false)),
    }));
  type Row = ReturnType<typeof table>[number];
  const decide = (rows: Row[], d: string, proto: string, s: number, t: number, sp: number, dp: number): boolean => {
    for (const r of rows) {
      if (r.direction !== d || (r.protocol !== '*' && r.protocol !== proto)) continue;
      if (proto !== 'icmp' && !r.dstPort[dp]) continue;
      if (r.srcPort[sp] && r.src[s] && r.dst[t]) return r.allow;
    }
    return false;
  };
  const b = table(before);
  const a = table(after);
  for (const direction of DIRECTIONS)
    for (const protocol of FLOW_PROTOCOLS)
      for (let s = 0; s < ADDRESSES.length; s++)
        for (let t = 0; t < ADDRESSES.length; t++) {
          if (isV6(ADDRESSES[s]) !== isV6(ADDRESSES[t])) continue;
          for (let sp = 0; sp < SRC_PORTS.length; sp++)
            for (let dp = 0; dp < (protocol === 'icmp' ? 1 : PORTS.length); dp++) {
              if (decide(a, direction, protocol, s, t, sp, dp) && !decide(b, direction, protocol, s, t, sp, dp)) {
                return { direction, protocol, src: ADDRESSES[s], dst: ADDRESSES[t], srcPort: SRC_PORTS[sp], dstPort: protocol === 'icmp' ? 0 : PORTS[dp] };
              }
            }
        }
  return undefined;
}

// ------------------------------------------------------------------ generators

export interface RuleOptions {
  /** Service tags on either side (VirtualNetwork, Internet, AzureLoadBalancer). */
  tags?: boolean;
  /** Source port ranges other than `*`. */
  sourcePorts?: boolean;
}

export function ruleArb(name: string, options: RuleOptions = {}): fc.Arbitrary<ArmSecurityRule> {
  const singles = options.tags === false ? [...PREFIXES, '*'] : [...PREFIXES, ...TAGS];
  const side = fc.oneof(
    fc.constantFrom(...singles).map((p) => ({ single: p as string | undefined, list: undefined as string[] | undefined })),
    fc.subarray(PREFIXES, { minLength: 1, maxLength: 3 }).map((l) => ({ single: undefined as string | undefined, list: l as string[] | undefined })),
  );
  const dports = fc.oneof(
    fc.constantFrom(...DEST_PORTS).map((p) => ({ single: p as string | undefined, list: undefined as string[] | undefined })),
    fc.subarray(DEST_PORTS, { minLength: 1, maxLength: 3 }).map((l) => ({ single: undefined as string | undefined, list: l as string[] | undefined })),
  );
  const sport = options.sourcePorts ? fc.constantFrom(...SOURCE_PORTS) : fc.constant('*');
  return fc
    .record({
      src: side,
      dst: side,
      dports,
      sport,
      protocol: fc.constantFrom(...PROTOCOLS),
      access: fc.constantFrom('Allow', 'Deny'),
      direction: fc.constantFrom('Inbound', 'Inbound', 'Outbound'),
      priority: fc.integer({ min: 100, max: 600 }),
    })
    .map((r) => ({
      name,
      properties: {
        protocol: r.protocol,
        sourcePortRange: r.sport,
        ...(r.src.single !== undefined ? { sourceAddressPrefix: r.src.single } : { sourceAddressPrefixes: r.src.list }),
        ...(r.dst.single !== undefined ? { destinationAddressPrefix: r.dst.single } : { destinationAddressPrefixes: r.dst.list }),
        ...(r.dports.single !== undefined ? { destinationPortRange: r.dports.single } : { destinationPortRanges: r.dports.list }),
        access: r.access,
        priority: r.priority,
        direction: r.direction,
      },
    }));
}

/** Rules with distinct names and, per direction, distinct priorities (as Azure requires). */
export function rulesArb(options: RuleOptions = {}, max = 6): fc.Arbitrary<ArmSecurityRule[]> {
  return fc.integer({ min: 0, max }).chain((n) =>
    fc.tuple(...Array.from({ length: n }, (_, i) => ruleArb(`r${i}`, options))).map((rules) => {
      const seen = new Set<string>();
      return rules.filter((r) => {
        const key = `${r.properties.direction}|${r.properties.priority}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    }),
  );
}

/** Default rules spelled with the VNet's addresses instead of tags (so nothing is unknown). */
export function plainDefaultRules(nsgId: string): ArmSecurityRule[] {
  const rule = (name: string, priority: number, direction: string, access: string, src: string, dst: string): ArmSecurityRule => ({
    id: `${nsgId}/defaultSecurityRules/${name}`,
    name,
    properties: { protocol: '*', sourcePortRange: '*', destinationPortRange: '*', sourceAddressPrefix: src, destinationAddressPrefix: dst, access, priority, direction },
  });
  return [
    rule('AllowVnetInBound', 65000, 'Inbound', 'Allow', VNET_SPACE[0], VNET_SPACE[0]),
    rule('DenyAllInBound', 65500, 'Inbound', 'Deny', '*', '*'),
    rule('AllowVnetOutBound', 65000, 'Outbound', 'Allow', VNET_SPACE[0], VNET_SPACE[0]),
    rule('DenyAllOutBound', 65500, 'Outbound', 'Deny', '*', '*'),
  ];
}

export function nsgWith(id: string, rules: ArmSecurityRule[], defaults?: ArmSecurityRule[], subnetIds: string[] = []): ArmNetworkSecurityGroup {
  return {
    id,
    name: id.split('/').pop()!,
    location: 'westeurope',
    properties: {
      securityRules: rules.map((r) => ({ ...r, id: `${id}/securityRules/${r.name}` })),
      ...(defaults ? { defaultSecurityRules: defaults } : {}),
      subnets: subnetIds.map((s) => ({ id: s })),
    },
  } as ArmNetworkSecurityGroup;
}
