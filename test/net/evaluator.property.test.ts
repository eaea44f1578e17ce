// The NSG evaluator against the brute-force reference (test/safety/reference.ts), on random rule sets:
// its verdict for whole prefixes must be what enumerating their addresses one by one gives.
import fc from 'fast-check';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg } from '../../shared/net/nsgEvaluator';
import { ADDRESSES, PORTS, PREFIXES, SRC_PORTS, VNET_SPACE, nsgWith, plainDefaultRules, referenceDecision, rulesArb } from '../safety/reference';

const RUNS = { numRuns: 200, seed: 9009 };
const NSG_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/prop';

const query = fc.record({
  direction: fc.constantFrom('Inbound' as const, 'Outbound' as const),
  protocol: fc.constantFrom('Tcp', 'Udp', 'Icmp'),
  port: fc.constantFrom(...PORTS),
  sources: fc.subarray([...PREFIXES, '0.0.0.0/0'], { minLength: 1, maxLength: 3 }),
  destinations: fc.subarray([...PREFIXES, '0.0.0.0/0'], { minLength: 1, maxLength: 3 }),
  plainDefaults: fc.boolean(),
});

type QueryShape = { direction: 'Inbound' | 'Outbound'; protocol: string; port: number; sources: string[]; destinations: string[]; plainDefaults: boolean };

const inSet = (set: AddressSet, address: string) => set.containsAll(AddressSet.fromPrefixes([address]));

/** Every representative (source, destination) pair of the query, decided one by one. */
function enumerate(rules: Parameters<typeof referenceDecision>[0], q: QueryShape, srcPorts: number[]): Set<string> {
  const sources = AddressSet.fromPrefixes(q.sources);
  const destinations = AddressSet.fromPrefixes(q.destinations);
  const seen = new Set<string>();
  for (const src of ADDRESSES.filter((a) => inSet(sources, a)))
    for (const dst of ADDRESSES.filter((a) => inSet(destinations, a))) {
      if (src.includes(':') !== dst.includes(':')) continue;
      for (const srcPort of srcPorts) {
        seen.add(referenceDecision(rules, { direction: q.direction.toLowerCase(), protocol: q.protocol.toLowerCase(), src, dst, srcPort, dstPort: q.port }));
      }
    }
  return seen;
}

describe('evaluateNsgAccess agrees with a per-address brute force', () => {
  test('exactly, on rules with service tags, lists, port ranges and both directions', () => {
    fc.assert(
      fc.property(rulesArb({ tags: true }, 7), query, (custom, q) => {
        const nsg = nsgWith(NSG_ID, custom, q.plainDefaults ? plainDefaultRules(NSG_ID) : undefined);
        const rules = rulesOfNsg(nsg);
        const result = evaluateNsgAccess(rules, { direction: q.direction, protocol: q.protocol, port: q.port, sources: AddressSet.fromPrefixes(q.sources), destinations: AddressSet.fromPrefixes(q.destinations) }, { virtualNetwork: VNET_SPACE });
        const seen = enumerate(rules, q, [0]);
        const expected = seen.size === 0 || (seen.size === 1 && seen.has('Deny')) ? 'Deny' : seen.size === 1 ? 'Allow' : 'Mixed';
        expect(result.decision).toBe(expected);
      }),
      RUNS,
    );
  });

  test('soundly, when rules match only some source ports: a Deny verdict holds for every source port', () => {
    fc.assert(
      fc.property(rulesArb({ tags: true, sourcePorts: true }, 7), query, (custom, q) => {
        const rules = rulesOfNsg(nsgWith(NSG_ID, custom));
        const result = evaluateNsgAccess(rules, { direction: q.direction, protocol: q.protocol, port: q.port, sources: AddressSet.fromPrefixes(q.sources), destinations: AddressSet.fromPrefixes(q.destinations) }, { virtualNetwork: VNET_SPACE });
        if (result.decision === 'Deny') expect([...enumerate(rules, q, SRC_PORTS)].filter((d) => d === 'Allow')).toEqual([]);
      }),
      RUNS,
    );
  });
});
