import { AddressSet, InvalidAddressPrefixError, containsAll, parseAddressPrefix, sortPrefixes } from '../../shared/net/addressSet';

const set = (...p: string[]) => AddressSet.fromPrefixes(p);

describe('AddressSet', () => {
  it('subtracting a /24 from a /16 leaves the fewest CIDRs that cover exactly the rest', () => {
    expect(set('10.0.0.0/16').subtract(set('10.0.0.0/24')).toCidrs()).toEqual([
      '10.0.1.0/24',
      '10.0.2.0/23',
      '10.0.4.0/22',
      '10.0.8.0/21',
      '10.0.16.0/20',
      '10.0.32.0/19',
      '10.0.64.0/18',
      '10.0.128.0/17',
    ]);
  });

  it('merges adjacent and overlapping prefixes into the covering CIDR', () => {
    expect(set('10.0.1.0/24', '10.0.0.0/24', '10.0.0.128/25').toCidrs()).toEqual(['10.0.0.0/23']);
    expect(set('10.0.0.0/24').union(set('10.0.1.0/24')).equals(set('10.0.0.0/23'))).toBe(true);
  });

  it('intersects partial overlaps both ways', () => {
    expect(set('10.0.0.0/23').intersect(set('10.0.1.0/24', '192.168.0.0/16')).toCidrs()).toEqual(['10.0.1.0/24']);
    expect(set('10.0.1.0/24').intersect(set('10.0.0.0/8')).toCidrs()).toEqual(['10.0.1.0/24']);
    expect(set('10.0.1.0/24').intersect(set('10.0.2.0/24')).isEmpty()).toBe(true);
  });

  it('answers containment: a range contains a sub-range, not a wider or half-overlapping one', () => {
    expect(containsAll(set('10.0.0.0/16'), set('10.0.5.0/24'))).toBe(true);
    expect(containsAll(set('10.0.5.0/24'), set('10.0.0.0/16'))).toBe(false);
    expect(containsAll(set('10.0.0.0/24', '10.0.1.0/24'), set('10.0.0.128/25', '10.0.1.0/25'))).toBe(true);
    expect(containsAll(set('10.0.0.0/25'), set('10.0.0.64/26', '10.0.0.128/26'))).toBe(false);
  });

  it('handles IPv6 and keeps the families apart', () => {
    const dual = set('10.0.0.0/8', 'fd00::/8');
    expect(dual.toCidrs()).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(dual.only(6).toCidrs()).toEqual(['fd00::/8']);
    expect(set('fd00:1::/48').subtract(set('fd00:1::/49')).toCidrs()).toEqual(['fd00:1:0:8000::/49']);
    expect(set('::/0').containsAll(set('2001:db8::1'))).toBe(true);
    expect(set('0.0.0.0/0').containsAll(set('2001:db8::1'))).toBe(false);
    expect(AddressSet.all().subtract(set('0.0.0.0/0')).toCidrs()).toEqual(['::/0']);
  });

  it('treats a bare address as a single host and ignores host bits under the mask', () => {
    expect(set('10.0.0.4').toCidrs()).toEqual(['10.0.0.4/32']);
    expect(set('2001:db8::1').toCidrs()).toEqual(['2001:db8::1/128']);
    expect(set('10.0.0.5/16').toCidrs()).toEqual(['10.0.0.0/16']);
  });

  it('rejects strings that are not addresses with a clear error, and parses leniently on request', () => {
    for (const bad of ['VirtualNetwork', '10.1', '10.0.0.0/33', '300.0.0.1', '', 'fe80::1%eth0', '::/129']) {
      expect(() => parseAddressPrefix(bad)).toThrow(InvalidAddressPrefixError);
    }
    const { set: parsed, invalid } = AddressSet.parse(['10.0.0.0/24', 'Storage', 'nonsense/8']);
    expect(parsed.toCidrs()).toEqual(['10.0.0.0/24']);
    expect(invalid).toEqual(['Storage', 'nonsense/8']);
  });

  it('prints readably', () => {
    expect(AddressSet.empty().toString()).toBe('(no addresses)');
    expect(AddressSet.all().toString()).toBe('any address');
    expect(set('10.0.1.0/24', '10.0.3.0/24').toString()).toBe('10.0.1.0/24, 10.0.3.0/24');
  });

  it('sorts prefixes by family and address and drops duplicates', () => {
    expect(sortPrefixes(['10.0.64.0/18', 'fd00::/64', '10.0.1.0/24', '10.0.1.0/24', '9.0.0.0/8'])).toEqual([
      '9.0.0.0/8',
      '10.0.1.0/24',
      '10.0.64.0/18',
      'fd00::/64',
    ]);
  });

  it('agrees with a brute-force model of the addresses on random sets (seeded)', () => {
    // All sets live in 10.0.0.0/24 so the model can enumerate its 256 addresses.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const randomPrefixes = () =>
      Array.from({ length: 1 + rand(4) }, () => {
        const len = 24 + rand(9);
        return `10.0.0.${rand(256)}/${len}`;
      });
    const hosts = Array.from({ length: 256 }, (_, i) => set(`10.0.0.${i}`));
    const members = (s: AddressSet) => hosts.map((h) => s.containsAll(h));
    for (let round = 0; round < 60; round++) {
      const a = set(...randomPrefixes());
      const b = set(...randomPrefixes());
      const ma = members(a);
      const mb = members(b);
      expect(members(a.union(b))).toEqual(ma.map((x, i) => x || mb[i]));
      expect(members(a.intersect(b))).toEqual(ma.map((x, i) => x && mb[i]));
      expect(members(a.subtract(b))).toEqual(ma.map((x, i) => x && !mb[i]));
      // toCidrs round-trips exactly.
      const cidrs = a.subtract(b).toCidrs();
      expect(set(...cidrs).equals(a.subtract(b))).toBe(true);
      expect(containsAll(a, a.intersect(b))).toBe(true);
      expect(a.subtract(b).intersect(b).isEmpty()).toBe(true);
    }
  });
});
