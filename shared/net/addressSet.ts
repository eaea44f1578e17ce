// Sets of IP addresses (IPv4 and IPv6) as sorted, merged lists of inclusive BigInt intervals per family.
// ipaddr.js parses and computes network/broadcast addresses; everything else is interval arithmetic,
// so partial overlaps of CIDRs (in either direction) come out exact.
import ipaddr from 'ipaddr.js';

export type AddressFamily = 4 | 6;

interface Interval {
  lo: bigint;
  hi: bigint;
}

const FAMILY_BITS: Record<AddressFamily, number> = { 4: 32, 6: 128 };
const FAMILY_MAX: Record<AddressFamily, bigint> = { 4: 2n ** 32n - 1n, 6: 2n ** 128n - 1n };

/** A string that is neither an IP address nor a CIDR prefix. */
export class InvalidAddressPrefixError extends Error {
  constructor(readonly prefix: string, readonly why: string) {
    super(`"${prefix}" is not an IP address or CIDR prefix: ${why}`);
    this.name = 'InvalidAddressPrefixError';
  }
}

export interface ParsedPrefix {
  family: AddressFamily;
  lo: bigint;
  hi: bigint;
}

function bytesToBigInt(bytes: number[]): bigint {
  return bytes.reduce((acc, b) => acc * 256n + BigInt(b), 0n);
}

function bigIntToBytes(value: bigint, family: AddressFamily): number[] {
  const bytes: number[] = [];
  let rest = value;
  for (let i = 0; i < FAMILY_BITS[family] / 8; i++) {
    bytes.unshift(Number(rest % 256n));
    rest /= 256n;
  }
  return bytes;
}

function formatAddress(value: bigint, family: AddressFamily): string {
  const addr = ipaddr.fromByteArray(bigIntToBytes(value, family));
  return addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

/**
 * Parses "10.0.0.0/16", "10.0.0.4", "2001:db8::/64" or "2001:db8::1" into its address interval.
 * Host bits under the mask are ignored (Azure normalizes "10.0.0.5/16" to 10.0.0.0/16).
 * Throws InvalidAddressPrefixError for anything else — IPv4 must be four-part decimal, as in ARM.
 */
export function parseAddressPrefix(text: string): ParsedPrefix {
  const parsed = cachedParse(text);
  if (parsed instanceof InvalidAddressPrefixError) throw new InvalidAddressPrefixError(parsed.prefix, parsed.why);
  return { ...parsed };
}

/** The parsed prefix, or undefined for a string that is not an address or CIDR. Never throws. */
export function tryParseAddressPrefix(text: string): ParsedPrefix | undefined {
  const parsed = cachedParse(text);
  return parsed instanceof InvalidAddressPrefixError ? undefined : { ...parsed };
}

// Rule sets repeat the same few prefixes across every evaluation; parsing is the hot spot.
const PARSE_CACHE_LIMIT = 10000;
const parseCache = new Map<string, ParsedPrefix | InvalidAddressPrefixError>();

function cachedParse(text: string): ParsedPrefix | InvalidAddressPrefixError {
  const key = String(text);
  let hit = parseCache.get(key);
  if (!hit) {
    try {
      hit = parseUncached(text);
    } catch (e) {
      if (!(e instanceof InvalidAddressPrefixError)) throw e;
      hit = e;
    }
    if (parseCache.size >= PARSE_CACHE_LIMIT) parseCache.clear();
    parseCache.set(key, hit);
  }
  return hit;
}

function parseUncached(text: string): ParsedPrefix {
  if (typeof text !== 'string') throw new InvalidAddressPrefixError(String(text), 'not a string');
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidAddressPrefixError(text, 'it is empty');
  const isV6 = trimmed.includes(':');
  const hasMask = trimmed.includes('/');
  const family: AddressFamily = isV6 ? 6 : 4;
  const cidr = hasMask ? trimmed : `${trimmed}/${FAMILY_BITS[family]}`;
  if (trimmed.includes('%')) throw new InvalidAddressPrefixError(text, 'zone ids are not allowed');
  const valid = isV6 ? ipaddr.IPv6.isValidCIDR(cidr) : ipaddr.IPv4.isValidCIDRFourPartDecimal(cidr);
  if (!valid) throw new InvalidAddressPrefixError(text, isV6 ? 'bad IPv6 address or mask' : 'bad IPv4 address or mask');
  const cls = isV6 ? ipaddr.IPv6 : ipaddr.IPv4;
  const lo = bytesToBigInt(cls.networkAddressFromCIDR(cidr).toByteArray());
  const hi = bytesToBigInt(cls.broadcastAddressFromCIDR(cidr).toByteArray());
  return { family, lo, hi };
}

export function isAddressPrefix(text: string): boolean {
  return tryParseAddressPrefix(text) !== undefined;
}

function normalize(intervals: Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    // Adjacent intervals merge too, so equal sets always have equal representations.
    if (last && iv.lo <= last.hi + 1n) {
      if (iv.hi > last.hi) last.hi = iv.hi;
    } else {
      out.push({ lo: iv.lo, hi: iv.hi });
    }
  }
  return out;
}

function intersectIntervals(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = a[i].lo > b[j].lo ? a[i].lo : b[j].lo;
    const hi = a[i].hi < b[j].hi ? a[i].hi : b[j].hi;
    if (lo <= hi) out.push({ lo, hi });
    if (a[i].hi < b[j].hi) i++;
    else j++;
  }
  return out;
}

function subtractIntervals(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const iv of a) {
    let lo = iv.lo;
    const hi = iv.hi;
    while (j < b.length && b[j].hi < lo) j++;
    let k = j;
    while (k < b.length && b[k].lo <= hi && lo <= hi) {
      if (b[k].lo > lo) out.push({ lo, hi: b[k].lo - 1n });
      lo = b[k].hi + 1n;
      k++;
    }
    if (lo <= hi) out.push({ lo, hi });
  }
  return out;
}

function intervalToCidrs(iv: Interval, family: AddressFamily): string[] {
  const bits = FAMILY_BITS[family];
  const out: string[] = [];
  let lo = iv.lo;
  while (lo <= iv.hi) {
    // Grow the block while it stays aligned on lo and inside the interval.
    let size = 1n;
    let hostBits = 0;
    while (hostBits < bits && lo % (size * 2n) === 0n && lo + size * 2n - 1n <= iv.hi) {
      size *= 2n;
      hostBits++;
    }
    out.push(`${formatAddress(lo, family)}/${bits - hostBits}`);
    lo += size;
  }
  return out;
}

/** An immutable set of IPv4 and IPv6 addresses. */
export class AddressSet {
  private constructor(
    private readonly v4: readonly Interval[],
    private readonly v6: readonly Interval[],
  ) {}

  static empty(): AddressSet {
    return new AddressSet([], []);
  }

  /** Every IPv4 and every IPv6 address (what `*` stands for in a rule). */
  static all(): AddressSet {
    return new AddressSet([{ lo: 0n, hi: FAMILY_MAX[4] }], [{ lo: 0n, hi: FAMILY_MAX[6] }]);
  }

  static allOf(family: AddressFamily): AddressSet {
    const whole = [{ lo: 0n, hi: FAMILY_MAX[family] }];
    return family === 4 ? new AddressSet(whole, []) : new AddressSet([], whole);
  }

  /** Strict: throws InvalidAddressPrefixError on the first string that is not an address or CIDR. */
  static fromPrefixes(prefixes: readonly string[]): AddressSet {
    const v4: Interval[] = [];
    const v6: Interval[] = [];
    for (const p of prefixes) {
      const parsed = parseAddressPrefix(p);
      (parsed.family === 4 ? v4 : v6).push({ lo: parsed.lo, hi: parsed.hi });
    }
    return new AddressSet(normalize(v4), normalize(v6));
  }

  /** Lenient: parses what it can and returns the strings it could not parse. */
  static parse(prefixes: readonly string[]): { set: AddressSet; invalid: string[] } {
    const valid: string[] = [];
    const invalid: string[] = [];
    for (const p of prefixes) (isAddressPrefix(p) ? valid : invalid).push(p);
    return { set: AddressSet.fromPrefixes(valid), invalid };
  }

  union(other: AddressSet): AddressSet {
    return new AddressSet(normalize([...this.v4, ...other.v4]), normalize([...this.v6, ...other.v6]));
  }

  intersect(other: AddressSet): AddressSet {
    return new AddressSet(intersectIntervals([...this.v4], [...other.v4]), intersectIntervals([...this.v6], [...other.v6]));
  }

  subtract(other: AddressSet): AddressSet {
    return new AddressSet(subtractIntervals([...this.v4], [...other.v4]), subtractIntervals([...this.v6], [...other.v6]));
  }

  /** Only the addresses of one family. */
  only(family: AddressFamily): AddressSet {
    return family === 4 ? new AddressSet(this.v4, []) : new AddressSet([], this.v6);
  }

  isEmpty(): boolean {
    return this.v4.length === 0 && this.v6.length === 0;
  }

  /** True when every address of `other` is in this set. */
  containsAll(other: AddressSet): boolean {
    return other.subtract(this).isEmpty();
  }

  overlaps(other: AddressSet): boolean {
    return !this.intersect(other).isEmpty();
  }

  equals(other: AddressSet): boolean {
    return this.containsAll(other) && other.containsAll(this);
  }

  /** The fewest CIDR prefixes that cover exactly this set, IPv4 first, in address order. */
  toCidrs(): string[] {
    return [...this.v4.flatMap((iv) => intervalToCidrs(iv, 4)), ...this.v6.flatMap((iv) => intervalToCidrs(iv, 6))];
  }

  toString(): string {
    if (this.isEmpty()) return '(no addresses)';
    const cidrs = this.toCidrs();
    const v4All = this.v4.length === 1 && this.v4[0].lo === 0n && this.v4[0].hi === FAMILY_MAX[4];
    const v6All = this.v6.length === 1 && this.v6[0].lo === 0n && this.v6[0].hi === FAMILY_MAX[6];
    if (v4All && v6All) return 'any address';
    return cidrs.join(', ');
  }
}

/** `a` contains every address of `b`. */
export function containsAll(a: AddressSet, b: AddressSet): boolean {
  return a.containsAll(b);
}

/** Sorts address prefix strings by family and address (unparsable strings last, alphabetically); drops duplicates. */
export function sortPrefixes(prefixes: readonly string[]): string[] {
  const unique = [...new Set(prefixes.map((p) => p.trim()))];
  const key = (p: string): [number, bigint, bigint] => {
    const parsed = tryParseAddressPrefix(p);
    return parsed ? [parsed.family, parsed.lo, parsed.hi] : [9, 0n, 0n];
  };
  return unique.sort((a, b) => {
    const [fa, la, ha] = key(a);
    const [fb, lb, hb] = key(b);
    if (fa !== fb) return fa - fb;
    if (la !== lb) return la < lb ? -1 : 1;
    if (ha !== hb) return ha > hb ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * The address families a set holds whole (every IPv4 address, every IPv6 address): 0.0.0.0/0, or
 * 0.0.0.0/1 + 128.0.0.0/1, or any union that leaves no gap. Empty when it holds neither whole.
 */
export function wholeFamiliesOf(set: AddressSet): AddressFamily[] {
  return ([4, 6] as const).filter((f) => set.containsAll(AddressSet.allOf(f)));
}
