// "No plan ever widens", as properties over random NSGs and clusters (fast-check, fixed seed, a fixed
// number of runs so `npm test` stays fast). Each write is judged twice: by the write gate, and
// independently by the brute-force reference over every representative flow (test/safety/reference.ts).
import fc from 'fast-check';
import type { ArmManagedCluster, ArmSecurityRule, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import { TopologyIndex } from '../../shared/azure/topology';
import { apiAuthorizedRanges } from '../../shared/controls/apiAuthorizedRanges';
import { httpApplicationRouting } from '../../shared/controls/httpApplicationRouting';
import { MANAGED_SSH_RULE_NAME, nodeSshDeny } from '../../shared/controls/nodeSshDeny';
import type { ClusterObservation, SecurityRuleChange } from '../../shared/controls/types';
import { judgeWrite } from '../../shared/engine/writeGate';
import { rulesOfNsg } from '../../shared/net/nsgEvaluator';
import ipaddr from 'ipaddr.js';
import { VNET_SPACE, nsgWith, plainDefaultRules, referenceWidening, ruleArb, rulesArb } from './reference';

const RUNS = { numRuns: 200, seed: 20261201 };
const SUB = '00000000-0000-0000-0000-0000000000aa';
const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
const NSG_ID = `${RG}/providers/Microsoft.Network/networkSecurityGroups/nodes-nsg`;
const VNET_ID = `${RG}/providers/Microsoft.Network/virtualNetworks/vnet`;

/** The NSG's rules once one rule is written (replaced by name, or added), computed here independently. */
function withWritten(rules: ArmSecurityRule[], name: string, props: ArmSecurityRule['properties']): ArmSecurityRule[] {
  return [...rules.filter((r) => r.name.toLowerCase() !== name.toLowerCase()), { name, properties: props }];
}

// ------------------------------------------------------------------ (a) node-ssh-deny on random NSGs

/** Cluster layouts behind one NSG: node subnets (and pod subnets) inside 10.0.0.0/16. */
const LAYOUTS: Array<Array<{ nodes: string; pods?: string }>> = [
  [{ nodes: '10.0.0.0/30' }],
  [{ nodes: '10.0.0.0/30', pods: '10.0.1.0/30' }],
  [{ nodes: '10.0.0.0/30' }, { nodes: '10.0.0.4/30' }],
];

function world(rules: ArmSecurityRule[], layout: (typeof LAYOUTS)[number], plainDefaults: boolean) {
  const subnets = layout.flatMap((c, i) => [
    { name: `nodes${i}`, prefix: c.nodes, nsg: true },
    ...(c.pods ? [{ name: `pods${i}`, prefix: c.pods, nsg: false }] : []),
  ]);
  const vnet: ArmVirtualNetwork = {
    id: VNET_ID,
    name: 'vnet',
    location: 'westeurope',
    properties: {
      addressSpace: { addressPrefixes: [...VNET_SPACE] },
      subnets: subnets.map((s) => ({ id: `${VNET_ID}/subnets/${s.name}`, name: s.name, properties: { addressPrefix: s.prefix, ...(s.nsg ? { networkSecurityGroup: { id: NSG_ID } } : {}) } })),
    },
  } as ArmVirtualNetwork;
  const clusters = layout.map(
    (c, i) =>
      ({
        id: `${RG}/providers/Microsoft.ContainerService/managedClusters/aks${i}`,
        name: `aks${i}`,
        location: 'westeurope',
        properties: { agentPoolProfiles: [{ name: 'pool', vnetSubnetID: `${VNET_ID}/subnets/nodes${i}`, ...(c.pods ? { podSubnetID: `${VNET_ID}/subnets/pods${i}` } : {}) }] },
      }) as unknown as ArmManagedCluster,
  );
  const nsg = nsgWith(NSG_ID, rules, plainDefaults ? plainDefaultRules(NSG_ID) : undefined, subnets.filter((s) => s.nsg).map((s) => `${VNET_ID}/subnets/${s.name}`));
  const topology = new TopologyIndex({ clusters, nsgs: [nsg], vnets: [vnet] });
  return { nsg, topology, clusters };
}

/** Random rules, sometimes one of them NetGuard's own rule as a person may have edited it. */
const nsgRules = fc.tuple(rulesArb({ tags: true, sourcePorts: true }, 6), fc.option(ruleArb(MANAGED_SSH_RULE_NAME, { tags: true, sourcePorts: true }), { nil: undefined })).map(([rules, own]) => {
  if (!own || rules.some((r) => r.properties.priority === own.properties.priority && r.properties.direction === own.properties.direction)) return rules;
  return [...rules, own];
});

describe('(a) node-ssh-deny never plans a widening write', () => {
  test('on random NSGs and cluster layouts: the gate allows every plan, and the brute force finds no flow it opens', () => {
    let plans = 0;
    fc.assert(
      fc.property(nsgRules, fc.constantFrom(...LAYOUTS), fc.boolean(), (rules, layout, plainDefaults) => {
        const { nsg, topology, clusters } = world(rules, layout, plainDefaults);
        for (const cluster of clusters) {
          const observation: ClusterObservation = { cluster, topology };
          for (const judgement of nodeSshDeny.evaluate(observation)) {
            if (judgement.compliant) continue;
            const plan = nodeSshDeny.plan(judgement, observation);
            if (plan.kind !== 'security-rule') continue;
            plans++;
            expect(judgeWrite(plan, { nsg, topology })).toEqual({ allowed: true });
            const after = withWritten(nsg.properties.securityRules ?? [], plan.ruleName, plan.after);
            const before = rulesOfNsg(nsg);
            const opened = referenceWidening(before, rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: after } }));
            expect(opened).toBeUndefined();
          }
        }
      }),
      RUNS,
    );
    expect(plans).toBeGreaterThan(50); // the generators do reach the planner
  });

  test("the old repair of NetGuard's broadened rule (sources narrowed back to the AKS subnets) is refused by the gate", () => {
    const own: ArmSecurityRule = { name: MANAGED_SSH_RULE_NAME, properties: { protocol: 'Tcp', sourcePortRange: '*', sourceAddressPrefix: '*', destinationAddressPrefix: 'VirtualNetwork', destinationPortRange: '22', access: 'Deny', priority: 400, direction: 'Inbound' } };
    const allowVnet: ArmSecurityRule = { name: 'allow-vnet', properties: { protocol: 'Tcp', sourcePortRange: '*', sourceAddressPrefix: '10.0.0.0/16', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 300, direction: 'Inbound' } };
    const allowAll: ArmSecurityRule = { name: 'allow-all', properties: { ...allowVnet.properties, sourceAddressPrefix: '*', priority: 500 } };
    const { nsg, topology } = world([allowVnet, own, allowAll], LAYOUTS[0], false);
    const old: SecurityRuleChange = { kind: 'security-rule', nsgId: NSG_ID, ruleName: MANAGED_SSH_RULE_NAME, after: { ...own.properties, sourceAddressPrefix: undefined, sourceAddressPrefixes: ['10.0.0.0/30'], priority: 299 }, needsPerson: false, summary: 'old' };
    const verdict = judgeWrite(old, { nsg, topology });
    expect(verdict.allowed).toBe(false);
    expect(referenceWidening(rulesOfNsg(nsg), rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: withWritten(nsg.properties.securityRules!, old.ruleName, old.after) } }))).toMatchObject({ src: expect.not.stringMatching(/^10\.0\./), dstPort: 22 });
  });
});

describe('the write gate agrees with the brute force on arbitrary rule writes', () => {
  const write = fc.record({ target: fc.integer({ min: 0, max: 7 }), rule: ruleArb('new', { tags: true, sourcePorts: true }) });

  test('it never allows a write the brute force sees opening a flow (any rules, tags included)', () => {
    fc.assert(
      fc.property(rulesArb({ tags: true, sourcePorts: true }, 6), write, fc.boolean(), (rules, w, plainDefaults) => {
        const { nsg, topology } = world(rules, LAYOUTS[0], plainDefaults);
        const name = rules[w.target]?.name ?? 'new';
        const plan: SecurityRuleChange = { kind: 'security-rule', nsgId: NSG_ID, ruleName: name, after: w.rule.properties, needsPerson: false, summary: 'random' };
        const opened = referenceWidening(rulesOfNsg(nsg), rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: withWritten(rules, name, w.rule.properties) } }));
        if (opened) expect(judgeWrite(plan, { nsg, topology }).allowed).toBe(false);
      }),
      RUNS,
    );
  });

  test('and, with nothing unknown (no tags, plain default rules), it refuses exactly the writes that open a flow', () => {
    let refused = 0;
    fc.assert(
      fc.property(rulesArb({ tags: false, sourcePorts: true }, 6), write.map((w) => ({ ...w, rule: w.rule })), (rules, w) => {
        fc.pre(![w.rule.properties.sourceAddressPrefix, w.rule.properties.destinationAddressPrefix].some((t) => t && /^[A-Za-z]/.test(t)));
        const { nsg, topology } = world(rules, LAYOUTS[0], true);
        const name = rules[w.target]?.name ?? 'new';
        const plan: SecurityRuleChange = { kind: 'security-rule', nsgId: NSG_ID, ruleName: name, after: w.rule.properties, needsPerson: false, summary: 'random' };
        const opened = referenceWidening(rulesOfNsg(nsg), rulesOfNsg({ ...nsg, properties: { ...nsg.properties, securityRules: withWritten(rules, name, w.rule.properties) } }));
        const verdict = judgeWrite(plan, { nsg, topology });
        if (!verdict.allowed) refused++;
        expect(verdict.allowed).toBe(opened === undefined);
      }),
      RUNS,
    );
    expect(refused).toBeGreaterThan(20);
  });
});

// ------------------------------------------------------------------ (c) cluster properties

const RANGES = ['0.0.0.0/0', '0.0.0.0/1', '128.0.0.0/1', '0.0.0.0/2', '64.0.0.0/2', '203.0.113.0/24', '198.51.100.7/32', '10.0.0.0/8', '::/0', '::/1', '8000::/1', '2001:db8::/32'];
/** Representatives: every address class the ranges above can tell apart. */
const PROBES = ['0.0.0.1', '10.1.2.3', '64.0.0.1', '127.255.255.255', '128.0.0.1', '198.51.100.7', '198.51.100.8', '203.0.113.9', '255.255.255.255', '::1', '2001:db8::1', '8000::1', 'ffff::1'];

function admits(ranges: unknown, address: string): boolean {
  if (!Array.isArray(ranges) || ranges.length === 0) return true;
  const a = ipaddr.parse(address);
  return ranges.some((r) => {
    const [range, bits] = ipaddr.parseCIDR(String(r));
    return range.kind() === a.kind() && a.match(range, bits);
  });
}

const clusterArb = fc.record({
  ranges: fc.option(fc.subarray(RANGES, { maxLength: 4 }), { nil: undefined }),
  private: fc.boolean(),
  routing: fc.constantFrom('none', 'on', 'off', 'ON-lowercase'),
  baseline: fc.option(fc.subarray(RANGES, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  fallback: fc.option(fc.subarray(RANGES, { minLength: 1, maxLength: 3 }), { nil: undefined }),
});

describe('(c) cluster-property plans never widen', () => {
  test('on random clusters, baselines and fallbacks: the gate allows every plan, and no probe address is admitted after that was not before', () => {
    let plans = 0;
    fc.assert(
      fc.property(clusterArb, (c) => {
        const cluster = {
          id: `${RG}/providers/Microsoft.ContainerService/managedClusters/aks`,
          name: 'aks',
          location: 'westeurope',
          eTag: 'e1',
          properties: {
            apiServerAccessProfile: { ...(c.ranges ? { authorizedIPRanges: c.ranges } : {}), enablePrivateCluster: c.private },
            ...(c.routing === 'none' ? {} : { addonProfiles: { [c.routing === 'ON-lowercase' ? 'httpapplicationrouting' : 'httpApplicationRouting']: { enabled: c.routing !== 'off' } } }),
          },
        } as unknown as ArmManagedCluster;
        const observation: ClusterObservation = { cluster, topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }), baselineAuthorizedRanges: c.baseline, fallbackAuthorizedRanges: c.fallback };
        for (const control of [apiAuthorizedRanges, httpApplicationRouting]) {
          for (const j of control.evaluate(observation)) {
            if (j.compliant) continue;
            const plan = control.plan(j, observation);
            if (plan.kind !== 'cluster-property') continue;
            plans++;
            expect(judgeWrite(plan, { cluster })).toEqual({ allowed: true });
            if (control === apiAuthorizedRanges) {
              for (const probe of PROBES) if (admits(plan.after, probe)) expect(admits(c.ranges, probe)).toBe(true);
              // Never a list that admits a whole family: one probe of each family stays out.
              expect(PROBES.filter((p) => !p.includes(':')).every((p) => admits(plan.after, p))).toBe(false);
            } else {
              expect(plan.after).toBe(false);
            }
          }
        }
      }),
      RUNS,
    );
    expect(plans).toBeGreaterThan(50);
  });

  test('the gate refuses a path it does not know, a list that admits every address, and re-enabling the add-on', () => {
    const cluster = { id: `${RG}/providers/Microsoft.ContainerService/managedClusters/aks`, name: 'aks', properties: { apiServerAccessProfile: { authorizedIPRanges: ['203.0.113.0/24'] } } } as unknown as ArmManagedCluster;
    const change = (path: string[], after: unknown) => ({ kind: 'cluster-property' as const, clusterId: cluster.id, path, before: undefined, after, needsPerson: false, summary: 'x' });
    expect(judgeWrite(change(['properties', 'networkProfile', 'networkPolicy'], 'none'), { cluster }).allowed).toBe(false);
    expect(judgeWrite(change(['properties', 'apiServerAccessProfile', 'authorizedIPRanges'], ['0.0.0.0/1', '128.0.0.0/1']), { cluster }).allowed).toBe(false);
    expect(judgeWrite(change(['properties', 'apiServerAccessProfile', 'authorizedIPRanges'], ['203.0.113.0/25', '198.51.100.7/32']), { cluster }).allowed).toBe(false);
    expect(judgeWrite(change(['properties', 'apiServerAccessProfile', 'authorizedIPRanges'], ['203.0.113.0/25']), { cluster })).toEqual({ allowed: true });
    expect(judgeWrite(change(['properties', 'apiServerAccessProfile', 'authorizedIPRanges'], []), { cluster }).allowed).toBe(false);
    expect(judgeWrite(change(['properties', 'addonProfiles', 'httpApplicationRouting', 'enabled'], true), { cluster }).allowed).toBe(false);
    expect(judgeWrite({ kind: 'network-policy' } as never, { cluster }).allowed).toBe(false);
  });
});
