import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSubnet, ArmVirtualNetwork, SecurityRuleProperties } from '../../shared/azure/armTypes';
import { TopologyIndex, type Inventory } from '../../shared/azure/topology';
import { MANAGED_SSH_RULE_NAME, judgeNsgForCluster, nodeSshDeny } from '../../shared/controls/nodeSshDeny';
import type { ClusterObservation, Judgement, PlannedChange, SecurityRuleChange } from '../../shared/controls/types';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg } from '../../shared/net/nsgEvaluator';
import { loadCluster, loadNsg, loadSubnet, loadVnet, securityRule } from '../net/azureFixtures';

interface Scenario {
  nsg: ArmNetworkSecurityGroup;
  vnet: ArmVirtualNetwork;
  cluster: ArmManagedCluster;
  inventory: Inventory;
}

/** A subnet from SubnetGet.json, moved into `vnet` under a new name and prefix. */
function subnetIn(vnet: ArmVirtualNetwork, name: string, prefix: string, nsg?: ArmNetworkSecurityGroup): ArmSubnet {
  const s = loadSubnet();
  s.id = `${vnet.id}/subnets/${name}`;
  s.name = name;
  s.properties.addressPrefix = prefix;
  if (nsg) s.properties.networkSecurityGroup = { id: nsg.id };
  vnet.properties.subnets = [...(vnet.properties.subnets ?? []), s];
  return s;
}

/**
 * Microsoft's examples joined up: test-vnet (10.0.0.0/16) whose subnet1 (10.0.1.0/24) carries the
 * nodes of clustername1 behind testnsg (rule1 Allow * port 80 at 130 + default rules), and a pod
 * subnet 10.0.64.0/18.
 */
function scenario(): Scenario {
  const nsg = loadNsg();
  const vnet = loadVnet();
  const nodes = vnet.properties.subnets![0];
  nodes.properties.networkSecurityGroup = { id: nsg.id };
  const pods = subnetIn(vnet, 'pods', '10.0.64.0/18');
  const cluster = loadCluster();
  cluster.properties.agentPoolProfiles![0].vnetSubnetID = nodes.id;
  cluster.properties.agentPoolProfiles![0].podSubnetID = pods.id;
  nsg.tags = { team: 'net' };
  return { nsg, vnet, cluster, inventory: { clusters: [cluster], nsgs: [nsg], vnets: [vnet] } };
}

function observe(s: Scenario, cluster: ArmManagedCluster = s.cluster): ClusterObservation {
  return { cluster, topology: new TopologyIndex(s.inventory) };
}

function addRules(s: Scenario, ...rules: Array<[string, number, 'Allow' | 'Deny', Partial<SecurityRuleProperties>?]>): void {
  s.nsg.properties.securityRules = [...(s.nsg.properties.securityRules ?? []), ...rules.map(([n, p, a, props]) => securityRule(s.nsg, n, p, a, props))];
}

/** What ARM would hold after the change: the rule created or replaced, with a new ETag. */
function applyChange(s: Scenario, change: PlannedChange): void {
  if (change.kind !== 'security-rule') throw new Error('expected a security rule change');
  const nsg = s.inventory.nsgs.find((n) => n.id.toLowerCase() === change.nsgId.toLowerCase())!;
  const rules = nsg.properties.securityRules ?? [];
  const at = rules.findIndex((r) => r.name.toLowerCase() === change.ruleName.toLowerCase());
  const existing = at >= 0 ? rules[at] : undefined;
  if (existing) expect(change.ifMatch).toBe(existing.etag);
  else expect(change.ifMatch).toBeUndefined();
  const written = securityRule(nsg, change.ruleName, change.after.priority, change.after.access as 'Allow' | 'Deny', {});
  written.properties = structuredClone(change.after);
  written.etag = `W/"written-${Math.random()}"`;
  nsg.properties.securityRules = at >= 0 ? rules.map((r, i) => (i === at ? written : r)) : [...rules, written];
}

function onlyJudgement(s: Scenario, cluster?: ArmManagedCluster): Judgement {
  const js = nodeSshDeny.evaluate(observe(s, cluster));
  expect(js).toHaveLength(1);
  return js[0];
}

function planFor(s: Scenario, j: Judgement, cluster?: ArmManagedCluster): SecurityRuleChange {
  const p = nodeSshDeny.plan(j, observe(s, cluster));
  if (p.kind !== 'security-rule') throw new Error(`expected a rule change, got ${JSON.stringify(p)}`);
  return p;
}

const AKS_SOURCES = ['10.0.1.0/24', '10.0.64.0/18'];

describe('node-ssh-deny control', () => {
  it('is enforced and automatic by default', () => {
    expect(nodeSshDeny).toMatchObject({ id: 'node-ssh-deny', severity: 'enforced', defaultMode: 'auto' });
    expect(MANAGED_SSH_RULE_NAME).toBe('aks-netguard-deny-node-ssh');
  });

  it("flags Microsoft's example NSG: AllowVnetInBound lets SSH from the node and pod subnets reach the nodes", () => {
    const s = scenario();
    const j = onlyJudgement(s);
    expect(j).toMatchObject({ control: 'node-ssh-deny', clusterId: s.cluster.id, targetId: s.nsg.id, compliant: false });
    expect(j.detail).toBe(
      'Inbound SSH from 10.0.1.0/24, 10.0.64.0/18 to the nodes is allowed by rule AllowVnetInBound (Allow at 65000, a default rule); no Deny for TCP/22 from these sources comes before it.',
    );
    expect(j.tagSources).toEqual([s.nsg.tags, s.cluster.tags]);
  });

  it('plans the managed Deny rule at 4096 when no Allow matches SSH, and that makes the NSG compliant', () => {
    const s = scenario();
    const change = planFor(s, onlyJudgement(s));
    expect(change).toMatchObject({ nsgId: s.nsg.id, ruleName: MANAGED_SSH_RULE_NAME, needsPerson: false });
    expect(change.ifMatch).toBeUndefined();
    expect(change.before).toBeUndefined();
    expect(change.after).toEqual({
      description: expect.stringContaining('NetGuard'),
      protocol: 'Tcp',
      sourcePortRange: '*',
      destinationPortRange: '22',
      sourceAddressPrefixes: AKS_SOURCES,
      destinationAddressPrefix: 'VirtualNetwork',
      access: 'Deny',
      priority: 4096,
      direction: 'Inbound',
    });
    applyChange(s, change);
    const after = onlyJudgement(s);
    expect(after.compliant).toBe(true);
    expect(after.detail).toBe('SSH to the nodes is denied by aks-netguard-deny-node-ssh (priority 4096).');
  });

  it.each([
    ['an Allow at 200', 199, [['allow-ssh', 200, 'Allow']]],
    ['an Allow at 200 with 199 taken', 198, [['allow-ssh', 200, 'Allow'], ['deny-dns', 199, 'Deny', { protocol: 'Udp', destinationPortRange: '53' }]]],
    ['an Allow at 200 with 199 taken by an Outbound rule', 199, [['allow-ssh', 200, 'Allow'], ['out', 199, 'Deny', { direction: 'Outbound' }]]],
    ['Allows at 300 and 250 (port range 20-30)', 249, [['a', 300, 'Allow'], ['b', 250, 'Allow', { destinationPortRange: '20-30' }]]],
    ['an Allow for UDP 22 and one for TCP 2222 only', 4096, [['udp', 200, 'Allow', { protocol: 'Udp' }], ['other', 210, 'Allow', { destinationPortRange: '2222' }]]],
    ['an Allow from the Internet tag only', 4096, [['inet', 200, 'Allow', { sourceAddressPrefix: 'Internet' }]]],
    ['an Allow for part of the pod subnet', 499, [['pods-part', 500, 'Allow', { sourceAddressPrefix: '10.0.96.0/19' }]]],
    ['an Allow for admins by application security group', 699, [['asg', 700, 'Allow', { sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: [{ id: '/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationSecurityGroups/admins' }] }]]],
  ] as Array<[string, number, Array<[string, number, 'Allow' | 'Deny', Partial<SecurityRuleProperties>?]>]>)(
    'with %s the Deny goes at %i and the NSG becomes compliant',
    (_label, expected, rules) => {
      const s = scenario();
      addRules(s, ...rules);
      const change = planFor(s, onlyJudgement(s));
      expect(change.after.priority).toBe(expected);
      applyChange(s, change);
      expect(onlyJudgement(s).compliant).toBe(true);
    },
  );

  it('names both rules when an Allow shadows the managed Deny, and updates that rule in place with its ETag', () => {
    const s = scenario();
    addRules(s, ['AKS-NetGuard-Deny-Node-SSH', 300, 'Deny', { sourceAddressPrefixes: AKS_SOURCES, destinationAddressPrefix: 'VirtualNetwork' }], [
      'allow-ssh',
      200,
      'Allow',
      { sourceAddressPrefix: '10.0.0.0/16' },
    ]);
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(false);
    expect(j.detail).toBe(
      'Inbound SSH from 10.0.1.0/24, 10.0.64.0/18 to the nodes is allowed by rule allow-ssh (Allow at 200); the Deny AKS-NetGuard-Deny-Node-SSH at 300 is shadowed.',
    );
    const existing = s.nsg.properties.securityRules!.find((r) => r.name === 'AKS-NetGuard-Deny-Node-SSH')!;
    const change = planFor(s, j);
    expect(change.ruleName).toBe('AKS-NetGuard-Deny-Node-SSH');
    expect(change.ifMatch).toBe(existing.etag);
    expect(change.before).toEqual(existing.properties);
    expect(change.after.priority).toBe(199);
    applyChange(s, change);
    expect(onlyJudgement(s).compliant).toBe(true);
  });

  it('says "partly" when an Allow covers only part of the subnets before a Deny', () => {
    const s = scenario();
    addRules(s, ['allow-jump', 200, 'Allow', { sourceAddressPrefix: '10.0.1.0/28' }], ['deny-ssh', 300, 'Deny', { sourceAddressPrefix: 'VirtualNetwork' }]);
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(false);
    expect(j.detail).toContain('Inbound SSH from 10.0.1.0/28 to the nodes is partly allowed by rule allow-jump (Allow at 200)');
    expect(j.detail).toContain('the Deny deny-ssh at 300 is shadowed');
  });

  it('counts an Allow chosen by application security group as possibly allowing SSH, and says why', () => {
    const s = scenario();
    const asg = [{ id: '/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationSecurityGroups/admins' }];
    addRules(s, ['allow-admins', 700, 'Allow', { sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: asg }], ['deny-ssh', 800, 'Deny']);
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(false);
    expect(j.detail).toBe(
      'Inbound SSH from 10.0.1.0/24, 10.0.64.0/18 to the nodes is possibly allowed by rule allow-admins (Allow at 700, which may match because it uses application security groups); the Deny deny-ssh at 800 is shadowed.',
    );
  });

  it('judges on the subnets it found and says which pod subnet it could not find', () => {
    const s = scenario();
    addRules(s, ['deny-ssh', 400, 'Deny', { sourceAddressPrefix: 'VirtualNetwork' }]);
    s.cluster.properties.agentPoolProfiles!.push({ name: 'pool2', vnetSubnetID: s.vnet.properties.subnets![0].id, podSubnetID: `${s.vnet.id}/subnets/lost-pods` });
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(true);
    expect(j.detail).toBe('SSH to the nodes is denied by deny-ssh (priority 400); the subnet lost-pods was not found, so its addresses are not judged.');
  });

  it('is compliant with two Denies that together cover the sources', () => {
    const s = scenario();
    addRules(s, ['deny-nodes', 400, 'Deny', { sourceAddressPrefix: '10.0.0.0/20' }], ['deny-pods', 410, 'Deny', { sourceAddressPrefixes: ['10.0.64.0/19', '10.0.96.0/19'] }]);
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(true);
    expect(j.detail).toBe('SSH to the nodes is denied by deny-nodes (priority 400) and deny-pods (priority 410).');
  });

  it('narrows an Allow at 100 (needs a person) to exactly its sources minus the AKS subnets; with the Deny that follows, the NSG is compliant', () => {
    const s = scenario();
    addRules(s, ['allow-vnet-ssh', 100, 'Allow', { sourceAddressPrefix: 'VirtualNetwork' }]);
    const blocking = s.nsg.properties.securityRules!.find((r) => r.name === 'allow-vnet-ssh')!;
    const narrowing = planFor(s, onlyJudgement(s));
    expect(narrowing).toMatchObject({ ruleName: 'allow-vnet-ssh', needsPerson: true, ifMatch: blocking.etag, before: blocking.properties });
    expect(narrowing.summary).toContain('narrow');
    expect(narrowing.after.sourceAddressPrefix).toBeUndefined();
    expect(narrowing.after.access).toBe('Allow');
    const remaining = AddressSet.fromPrefixes(narrowing.after.sourceAddressPrefixes!);
    const aks = AddressSet.fromPrefixes(AKS_SOURCES);
    expect(remaining.intersect(aks).isEmpty()).toBe(true);
    expect(remaining.union(aks).equals(AddressSet.fromPrefixes(['10.0.0.0/16']))).toBe(true);

    applyChange(s, narrowing);
    const next = planFor(s, onlyJudgement(s));
    expect(next).toMatchObject({ ruleName: MANAGED_SSH_RULE_NAME, needsPerson: false });
    applyChange(s, next);
    expect(onlyJudgement(s).compliant).toBe(true);
    // Everything else the Allow admitted still gets through.
    const others = evaluateNsgAccess(
      rulesOfNsg(s.nsg),
      { direction: 'Inbound', protocol: 'Tcp', port: 22, sources: AddressSet.fromPrefixes(['10.0.2.0/24']), destinations: AddressSet.fromPrefixes(['10.0.1.0/24']) },
      { virtualNetwork: ['10.0.0.0/16'] },
    );
    expect(others.allowedBy.map((o) => o.rule.name)).toEqual(['allow-vnet-ssh']);
  });

  it('narrows an Allow from * to every address but the AKS subnets, IPv6 included', () => {
    const s = scenario();
    addRules(s, ['allow-any-ssh', 100, 'Allow']);
    const narrowing = planFor(s, onlyJudgement(s));
    const remaining = AddressSet.fromPrefixes(narrowing.after.sourceAddressPrefixes!);
    expect(remaining.equals(AddressSet.all().subtract(AddressSet.fromPrefixes(AKS_SOURCES)))).toBe(true);
    expect(narrowing.after.sourceAddressPrefixes).toContain('::/0');
  });

  it('narrows the lowest matching Allow when every priority below it is taken', () => {
    const s = scenario();
    addRules(s, ['allow-105', 105, 'Allow', { sourceAddressPrefix: '10.0.0.0/8' }], ['allow-900', 900, 'Allow']);
    for (let p = 100; p < 105; p++) addRules(s, [`udp-${p}`, p, 'Deny', { protocol: 'Udp', destinationPortRange: String(5000 + p) }]);
    const narrowing = planFor(s, onlyJudgement(s));
    expect(narrowing).toMatchObject({ ruleName: 'allow-105', needsPerson: true });
    applyChange(s, narrowing);
    const next = planFor(s, onlyJudgement(s));
    expect(next.after.priority).toBe(899);
    applyChange(s, next);
    expect(onlyJudgement(s).compliant).toBe(true);
  });

  it('takes port 22 out of an Allow that admits nothing but the AKS subnets', () => {
    const s = scenario();
    addRules(s, ['allow-aks', 100, 'Allow', { sourceAddressPrefixes: AKS_SOURCES, destinationPortRange: '*' }]);
    const narrowing = planFor(s, onlyJudgement(s));
    expect(narrowing.needsPerson).toBe(true);
    expect(narrowing.after.destinationPortRanges).toEqual(['0-21', '23-65535']);
    expect(narrowing.after.sourceAddressPrefixes).toEqual(AKS_SOURCES);
  });

  it('denies the union of the AKS subnets of every cluster behind a shared NSG', () => {
    const s = scenario();
    const nodes2 = subnetIn(s.vnet, 'nodes2', '10.0.2.0/24', s.nsg);
    const pods2 = subnetIn(s.vnet, 'pods2', '10.0.128.0/18');
    const second = loadCluster();
    second.id = second.id.replace('clustername1', 'clustername2');
    second.name = 'clustername2';
    second.properties.agentPoolProfiles![0].vnetSubnetID = nodes2.id;
    second.properties.agentPoolProfiles![0].podSubnetID = pods2.id;
    s.inventory.clusters.push(second);

    const j1 = onlyJudgement(s);
    const change = planFor(s, j1);
    expect(change.after.sourceAddressPrefixes).toEqual(['10.0.1.0/24', '10.0.2.0/24', '10.0.64.0/18', '10.0.128.0/18']);
    applyChange(s, change);
    expect(onlyJudgement(s, s.cluster).compliant).toBe(true);
    expect(onlyJudgement(s, second).compliant).toBe(true);
    expect(judgeNsgForCluster(second, s.nsg.id, new TopologyIndex(s.inventory)).compliant).toBe(true);
  });

  it('judges each NSG of a cluster separately', () => {
    const s = scenario();
    const other = loadNsg();
    other.id = other.id.replace('testnsg', 'othernsg');
    other.name = 'othernsg';
    s.inventory.nsgs.push(other);
    const nodes2 = subnetIn(s.vnet, 'nodes2', '10.0.2.0/24', other);
    s.cluster.properties.agentPoolProfiles!.push({ name: 'pool2', vnetSubnetID: nodes2.id });
    const js = nodeSshDeny.evaluate(observe(s));
    expect(js.map((j) => j.targetId)).toEqual([s.nsg.id, other.id]);
    applyChange(s, planFor(s, js[0]));
    const after = nodeSshDeny.evaluate(observe(s));
    expect(after.map((j) => j.compliant)).toEqual([true, false]);
  });

  it('reports a node subnet without an NSG against the subnet, and cannot plan for it', () => {
    const s = scenario();
    delete s.vnet.properties.subnets![0].properties.networkSecurityGroup;
    const j = onlyJudgement(s);
    expect(j).toMatchObject({ targetId: s.vnet.properties.subnets![0].id, compliant: false });
    expect(j.detail).toContain('No NSG is attached to the node subnet subnet1');
    expect(nodeSshDeny.plan(j, observe(s))).toMatchObject({ kind: 'none' });
  });

  it('cannot judge a node subnet or an NSG missing from the inventory', () => {
    const s = scenario();
    s.inventory.nsgs = [];
    const j = onlyJudgement(s);
    expect(j).toMatchObject({ targetId: s.nsg.id, compliant: false });
    expect(j.detail).toContain('was not found');
    expect(nodeSshDeny.plan(j, observe(s))).toMatchObject({ kind: 'none' });

    const t = scenario();
    t.cluster.properties.agentPoolProfiles![0].vnetSubnetID = `${t.vnet.id}/subnets/gone`;
    const k = onlyJudgement(t);
    expect(k).toMatchObject({ targetId: `${t.vnet.id}/subnets/gone`, compliant: false });
    expect(k.detail).toContain('The node subnet gone was not found');
    expect(nodeSshDeny.plan(k, observe(t))).toMatchObject({ kind: 'none' });
  });

  it('judges the subnets of the AKS-managed VNet in the node resource group', () => {
    const s = scenario();
    delete s.cluster.properties.agentPoolProfiles![0].vnetSubnetID;
    delete s.cluster.properties.agentPoolProfiles![0].podSubnetID;
    expect(onlyJudgement(s)).toMatchObject({ targetId: s.cluster.id, compliant: false });

    const managed = loadVnet();
    managed.id = `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MC_rg1_clustername1_location1/providers/Microsoft.Network/virtualNetworks/aks-vnet`;
    managed.properties.addressSpace = { addressPrefixes: ['10.224.0.0/12'] };
    managed.properties.subnets = [];
    subnetIn(managed, 'aks-subnet', '10.224.0.0/16', s.nsg);
    s.inventory.vnets.push(managed);
    const j = onlyJudgement(s);
    expect(j).toMatchObject({ targetId: s.nsg.id, compliant: false });
    expect(j.detail).toContain('Inbound SSH from 10.224.0.0/16 to the nodes is allowed by rule AllowVnetInBound');
    applyChange(s, planFor(s, j));
    expect(onlyJudgement(s).compliant).toBe(true);
  });

  it('handles dual-stack IPv4/IPv6 node subnets', () => {
    const s = scenario();
    const nodes = s.vnet.properties.subnets![0];
    delete nodes.properties.addressPrefix;
    nodes.properties.addressPrefixes = ['10.0.1.0/24', 'fd00:db8:0:1::/64'];
    s.vnet.properties.addressSpace!.addressPrefixes!.push('fd00:db8::/48');
    addRules(s, ['deny-v4', 300, 'Deny', { sourceAddressPrefix: 'VirtualNetwork', destinationAddressPrefix: '10.0.0.0/16' }]);
    const j = onlyJudgement(s);
    expect(j.compliant).toBe(false);
    expect(j.detail).toContain('Inbound SSH from fd00:db8:0:1::/64 to the nodes in fd00:db8:0:1::/64 is partly allowed by rule AllowVnetInBound');
    const change = planFor(s, j);
    expect(change.after.sourceAddressPrefixes).toEqual(['10.0.1.0/24', '10.0.64.0/18', 'fd00:db8:0:1::/64']);
    applyChange(s, change);
    expect(onlyJudgement(s).compliant).toBe(true);
  });
});

describe('node-ssh-deny plans on generated NSGs (seeded)', () => {
  function generator(seed: number) {
    let state = seed;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    return { next, pick };
  }

  const SOURCES: Array<Partial<SecurityRuleProperties>> = [
    { sourceAddressPrefix: '*' },
    { sourceAddressPrefix: 'VirtualNetwork' },
    { sourceAddressPrefix: 'Internet' },
    { sourceAddressPrefix: 'AzureLoadBalancer' },
    { sourceAddressPrefix: 'Storage' },
    { sourceAddressPrefix: '10.0.0.0/8' },
    { sourceAddressPrefix: '10.0.1.0/25' },
    { sourceAddressPrefix: '10.0.1.128/25' },
    { sourceAddressPrefix: '10.0.64.0/19' },
    { sourceAddressPrefix: '192.168.0.0/16' },
    { sourceAddressPrefix: 'fd00:1::/48' },
    { sourceAddressPrefixes: ['10.0.96.0/19', '10.0.1.64/26'] },
    { sourceAddressPrefixes: ['10.0.1.0/24', '10.0.64.0/18'] },
    { sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: [{ id: '/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/applicationSecurityGroups/a' }] },
  ];
  const DESTINATIONS: Array<Partial<SecurityRuleProperties>> = [
    { destinationAddressPrefix: '*' },
    { destinationAddressPrefix: 'VirtualNetwork' },
    { destinationAddressPrefix: '10.0.1.0/24' },
    { destinationAddressPrefix: '10.0.1.0/25' },
    { destinationAddressPrefixes: ['10.0.1.128/25', '10.0.2.0/24'] },
    { destinationAddressPrefix: 'Internet' },
  ];
  const PORTS: Array<Partial<SecurityRuleProperties>> = [
    { destinationPortRange: '22' },
    { destinationPortRange: '*' },
    { destinationPortRange: '20-30' },
    { destinationPortRange: '80' },
    { destinationPortRanges: ['21-23', '443'] },
    { destinationPortRanges: ['80', '8080'] },
  ];
  const PROTOCOLS = ['Tcp', 'Udp', '*', 'Icmp', 'tcp'];
  const PROBE_SOURCES = ['10.0.1.5', '10.0.70.1', '10.0.200.1', '203.0.113.9', '168.63.129.16', '192.168.1.1'];
  const PROBE_DESTINATIONS = ['10.0.1.9', '10.0.1.200'];

  /** Single-address flows that were denied before a change must stay denied after it. */
  function deniedProbes(nsg: ArmNetworkSecurityGroup): Set<string> {
    const out = new Set<string>();
    for (const port of [22, 80, 443, 3389])
      for (const protocol of ['Tcp', 'Udp']) {
        // One evaluation covers every probe pair: a pair is allowed when an allowed part holds both ends.
        const r = evaluateNsgAccess(
          rulesOfNsg(nsg),
          { direction: 'Inbound', protocol, port, sources: AddressSet.fromPrefixes(PROBE_SOURCES), destinations: AddressSet.fromPrefixes(PROBE_DESTINATIONS) },
          { virtualNetwork: ['10.0.0.0/16'] },
        );
        const parts = r.allowedBy.flatMap((o) => o.parts);
        for (const src of PROBE_SOURCES)
          for (const dst of PROBE_DESTINATIONS) {
            const s = AddressSet.fromPrefixes([src]);
            const d = AddressSet.fromPrefixes([dst]);
            if (!parts.some((p) => p.sources.containsAll(s) && p.destinations.containsAll(d))) out.add(`${protocol} ${src} -> ${dst}:${port}`);
          }
      }
    return out;
  }

  it('the planned rule (after any narrowing a person approves) always makes the NSG compliant, and never opens anything', () => {
    let direct = 0;
    let narrowed = 0;
    let unplannable = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const g = generator(seed);
      const s = scenario();
      const used = new Set<number>();
      const count = 1 + Math.floor(g.next() * 12);
      for (let i = 0; i < count; i++) {
        // Crowd the low priorities so that some NSGs leave no room before their first Allow.
        const priority = g.next() < 0.5 ? 100 + Math.floor(g.next() * 8) : 100 + Math.floor(g.next() * 3900);
        if (used.has(priority)) continue;
        used.add(priority);
        addRules(s, [
          `r${i}`,
          priority,
          g.next() < 0.55 ? 'Allow' : 'Deny',
          {
            protocol: g.pick(PROTOCOLS),
            ...(g.next() < 0.1 ? { sourcePortRange: '1024-65535' } : {}),
            ...g.pick(SOURCES),
            ...g.pick(DESTINATIONS),
            ...g.pick(PORTS),
            ...(g.next() < 0.1 ? { direction: 'Outbound' } : {}),
          },
        ]);
      }
      if (g.next() < 0.2) addRules(s, [MANAGED_SSH_RULE_NAME, 3000 + Math.floor(g.next() * 1000), 'Deny', { sourceAddressPrefixes: ['10.0.1.0/24'], destinationAddressPrefix: 'VirtualNetwork' }]);

      let settled = false;
      for (let step = 0; step < 8 && !settled; step++) {
        const j = onlyJudgement(s);
        if (j.compliant) {
          settled = true;
          break;
        }
        const change = nodeSshDeny.plan(j, observe(s));
        if (change.kind === 'none') {
          // Only an Allow chosen by application security group cannot be narrowed by prefix.
          expect(change.reason).toContain('application security group');
          unplannable++;
          settled = true;
          break;
        }
        const deniedBefore = deniedProbes(s.nsg);
        applyChange(s, change);
        const deniedAfter = deniedProbes(s.nsg);
        for (const probe of deniedBefore) expect([seed, probe, deniedAfter.has(probe)]).toEqual([seed, probe, true]);
        if (change.kind === 'security-rule' && !change.needsPerson) {
          const priorities = s.nsg.properties.securityRules!.filter((r) => r.properties.direction === 'Inbound').map((r) => r.properties.priority);
          expect(new Set(priorities).size).toBe(priorities.length);
          expect([seed, onlyJudgement(s).compliant]).toEqual([seed, true]);
          direct++;
        } else {
          narrowed++;
        }
      }
      expect([seed, settled]).toEqual([seed, true]);
    }
    // The generator must exercise every path, or the test proves little.
    expect(direct).toBeGreaterThan(50);
    expect(narrowed).toBeGreaterThan(5);
    expect(unplannable).toBeLessThan(30);
  });
});
