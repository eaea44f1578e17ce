import type { ArmNetworkSecurityGroup, ArmSecurityRule, SecurityRuleProperties } from '../../shared/azure/armTypes';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg, type NsgFlow, type ServiceTagSpaces } from '../../shared/net/nsgEvaluator';
import { loadNsg, securityRule } from './azureFixtures';

// The VNet of these scenarios: node subnet 10.240.0.0/24, pod subnet 10.240.64.0/18.
const VNET: ServiceTagSpaces = { virtualNetwork: ['10.240.0.0/16'] };
const NODES = ['10.240.0.0/24'];
const AKS = ['10.240.0.0/24', '10.240.64.0/18'];

function ssh(sources: string[] = AKS, destinations: string[] = NODES): NsgFlow {
  return { direction: 'Inbound', protocol: 'Tcp', port: 22, sources: AddressSet.fromPrefixes(sources), destinations: AddressSet.fromPrefixes(destinations) };
}

/** The fixture NSG (rule1: Allow * port 80 at 130, and the default rules) plus extra custom rules. */
function nsgWith(...extra: Array<[string, number, 'Allow' | 'Deny', Partial<SecurityRuleProperties>?]>): ArmNetworkSecurityGroup {
  const nsg = loadNsg();
  nsg.properties.securityRules = [...(nsg.properties.securityRules ?? []), ...extra.map(([n, p, a, props]) => securityRule(nsg, n, p, a, props))];
  return nsg;
}

function judge(nsg: ArmNetworkSecurityGroup, flow: NsgFlow = ssh(), tags: ServiceTagSpaces = VNET) {
  return evaluateNsgAccess(rulesOfNsg(nsg), flow, tags);
}

describe('evaluateNsgAccess', () => {
  it('with only the default rules, AllowVnetInBound at 65000 lets SSH from the VNet through', () => {
    const r = judge(loadNsg());
    expect(r.decision).toBe('Allow');
    expect(r.allowedBy.map((o) => [o.rule.name, o.rule.priority, o.rule.isDefault])).toEqual([['AllowVnetInBound', 65000, true]]);
    expect(r.allowedBy[0].sources).toEqual(['10.240.0.0/24', '10.240.64.0/18']);
    expect(r.deniedBy).toEqual([]);
  });

  it('fills in Azure default rules when a payload omits them', () => {
    const nsg = loadNsg();
    delete nsg.properties.defaultSecurityRules;
    expect(judge(nsg).allowedBy.map((o) => o.rule.name)).toEqual(['AllowVnetInBound']);
  });

  it('the matching rule with the lowest priority number wins, whatever the array order', () => {
    const denyFirst = judge(nsgWith(['allow-ssh', 200, 'Allow'], ['deny-ssh', 100, 'Deny']));
    expect(denyFirst.decision).toBe('Deny');
    expect(denyFirst.deniedBy.map((o) => o.rule.name)).toEqual(['deny-ssh']);
    expect(denyFirst.shadowedDenies).toEqual([]);

    const allowFirst = judge(nsgWith(['deny-ssh', 300, 'Deny'], ['allow-ssh', 200, 'Allow']));
    expect(allowFirst.decision).toBe('Allow');
    expect(allowFirst.allowedBy.map((o) => o.rule.name)).toEqual(['allow-ssh']);
  });

  it('reports a Deny behind a winning Allow as shadowed, naming both rules', () => {
    const r = judge(nsgWith(['aks-netguard-deny-node-ssh', 300, 'Deny'], ['allow-ssh', 200, 'Allow', { sourceAddressPrefix: '10.240.0.0/16' }]));
    expect(r.decision).toBe('Allow');
    expect(r.shadowedDenies).toHaveLength(1);
    expect(r.shadowedDenies[0].rule).toMatchObject({ name: 'aks-netguard-deny-node-ssh', priority: 300 });
    expect(r.shadowedDenies[0].shadowedBy.map((x) => [x.name, x.priority])).toEqual([['allow-ssh', 200]]);
    // DenyAllInBound sits behind every Allow by design: it is not reported as shadowed.
    expect(r.shadowedDenies.map((s) => s.rule.name)).not.toContain('DenyAllInBound');
  });

  it('reads the plural address and port fields', () => {
    const r = judge(
      nsgWith([
        'deny-list',
        100,
        'Deny',
        { sourceAddressPrefixes: ['10.240.64.0/18', '10.240.0.0/24'], destinationAddressPrefixes: ['10.99.0.0/16', '10.240.0.0/24'], destinationPortRanges: ['80', '20-30'] },
      ]),
    );
    expect(r.decision).toBe('Deny');
    expect(r.deniedBy.map((o) => o.rule.name)).toEqual(['deny-list']);
  });

  it.each([
    [{ destinationPortRange: '20-30' }, 'Deny'],
    [{ destinationPortRange: '*' }, 'Deny'],
    [{ destinationPortRange: '23-30' }, 'Allow'],
    [{ destinationPortRanges: ['21', '22'] }, 'Deny'],
    [{ destinationPortRanges: ['21', '2222'] }, 'Allow'],
    [{ protocol: '*' }, 'Deny'],
    [{ protocol: 'tcp' }, 'Deny'],
    [{ protocol: 'Udp' }, 'Allow'],
    [{ protocol: 'Icmp' }, 'Allow'],
    [{ direction: 'Outbound' }, 'Allow'],
    [{ sourcePortRange: '1024-65535' }, 'Allow'],
  ] as Array<[Partial<SecurityRuleProperties>, string]>)('a Deny at 100 with %j gives %s for inbound TCP/22', (props, expected) => {
    expect(judge(nsgWith(['deny', 100, 'Deny', props])).decision).toBe(expected);
  });

  it('a Deny covering half the sources leaves the other half allowed; a second Deny for the rest makes it compliant', () => {
    const half = judge(nsgWith(['deny-low', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/17' }]), ssh(['10.240.0.0/16']));
    expect(half.decision).toBe('Mixed');
    expect(half.allowedBy[0].rule.name).toBe('AllowVnetInBound');
    expect(half.allowedBy[0].sources).toEqual(['10.240.128.0/17']);

    const both = judge(
      nsgWith(['deny-low', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/17' }], ['deny-high', 110, 'Deny', { sourceAddressPrefix: '10.240.128.0/17' }]),
      ssh(['10.240.0.0/16']),
    );
    expect(both.decision).toBe('Deny');
    expect(both.deniedBy.map((o) => [o.rule.name, o.sources])).toEqual([
      ['deny-low', ['10.240.0.0/17']],
      ['deny-high', ['10.240.128.0/17']],
    ]);
  });

  it('splits on destinations too: a Deny for half the node subnet plus one for the other half is compliant', () => {
    const half = judge(nsgWith(['deny-a', 100, 'Deny', { destinationAddressPrefix: '10.240.0.0/25' }]));
    expect(half.decision).toBe('Mixed');
    expect(half.allowedBy[0].destinations).toEqual(['10.240.0.128/25']);
    const both = judge(nsgWith(['deny-a', 100, 'Deny', { destinationAddressPrefix: '10.240.0.0/25' }], ['deny-b', 101, 'Deny', { destinationAddressPrefix: '10.240.0.128/25' }]));
    expect(both.decision).toBe('Deny');
  });

  it('an Allow covering part of the sources before a full Deny allows exactly that part', () => {
    const r = judge(nsgWith(['allow-some', 100, 'Allow', { sourceAddressPrefix: '10.240.0.0/26' }], ['deny-all-ssh', 200, 'Deny', { sourceAddressPrefix: 'VirtualNetwork' }]));
    expect(r.decision).toBe('Mixed');
    expect(r.allowedBy.map((o) => [o.rule.name, o.sources, o.destinations])).toEqual([['allow-some', ['10.240.0.0/26'], ['10.240.0.0/24']]]);
    expect(r.deniedBy[0].rule.name).toBe('deny-all-ssh');
    expect(r.shadowedDenies.map((s) => [s.rule.name, s.sources])).toEqual([['deny-all-ssh', ['10.240.0.0/26']]]);
  });

  it('a rule prefix wider than the subnets covers them; one beside them does not', () => {
    expect(judge(nsgWith(['deny', 100, 'Deny', { sourceAddressPrefix: '10.0.0.0/8' }])).decision).toBe('Deny');
    expect(judge(nsgWith(['deny', 100, 'Deny', { sourceAddressPrefix: '10.241.0.0/16' }])).decision).toBe('Allow');
    expect(judge(nsgWith(['deny', 100, 'Deny', { sourceAddressPrefix: '0.0.0.0/0' }])).decision).toBe('Deny');
    expect(judge(nsgWith(['deny', 100, 'Deny', { sourceAddressPrefix: 'Any' }])).decision).toBe('Deny');
  });

  it('counts pod subnets as sources: a Deny that only names the node subnet leaves pods allowed', () => {
    const r = judge(nsgWith(['deny-nodes', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/24' }]));
    expect(r.decision).toBe('Mixed');
    expect(r.allowedBy[0].sources).toEqual(['10.240.64.0/18']);
  });

  it('Internet never contains VNet addresses; AzureLoadBalancer is 168.63.129.16', () => {
    expect(judge(nsgWith(['deny-internet', 100, 'Deny', { sourceAddressPrefix: 'Internet' }])).decision).toBe('Allow');
    const fromInternet = judge(nsgWith(['deny-internet', 100, 'Deny', { sourceAddressPrefix: 'Internet' }]), ssh(['203.0.113.0/24']));
    expect(fromInternet.deniedBy.map((o) => o.rule.name)).toEqual(['deny-internet']);

    const lb = judge(loadNsg(), ssh(['168.63.129.16']));
    expect(lb.allowedBy.map((o) => o.rule.name)).toEqual(['AllowAzureLoadBalancerInBound']);
    expect(judge(nsgWith(['allow-lb', 100, 'Allow', { sourceAddressPrefix: 'AzureLoadBalancer' }], ['deny', 200, 'Deny'])).decision).toBe('Deny');
  });

  it('other service tags never match VNet addresses and are mentioned in the reasons', () => {
    const r = judge(nsgWith(['allow-storage', 100, 'Allow', { sourceAddressPrefix: 'Storage.WestUS' }], ['deny', 200, 'Deny']));
    expect(r.decision).toBe('Deny');
    expect(r.reasons.join(' ')).toContain('Storage.WestUS');
    const notDenied = judge(nsgWith(['deny-cloud', 100, 'Deny', { sourceAddressPrefix: 'AzureCloud' }]));
    expect(notDenied.decision).toBe('Allow');
    expect(notDenied.reasons.join(' ')).toContain('AzureCloud');
  });

  it('handles IPv6 prefixes in rules and subnets', () => {
    const tags = { virtualNetwork: ['10.240.0.0/16', 'fd00:240::/48'] };
    const dual = ssh(['10.240.0.0/24', 'fd00:240::/64'], ['10.240.0.0/24', 'fd00:240::/64']);
    const v4Only = judge(nsgWith(['deny-v4', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/16' }]), dual, tags);
    expect(v4Only.decision).toBe('Mixed');
    expect(v4Only.allowedBy[0].sources).toEqual(['fd00:240::/64']);
    expect(v4Only.allowedBy[0].destinations).toEqual(['fd00:240::/64']);

    const both = judge(nsgWith(['deny-v4', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/16' }], ['deny-v6', 101, 'Deny', { sourceAddressPrefixes: ['fd00:240::/48'] }]), dual, tags);
    expect(both.decision).toBe('Deny');
    // A v6-only rule never matches a v4-only flow, and a v6 Allow never lets v4 through.
    expect(judge(nsgWith(['allow-v6', 100, 'Allow', { sourceAddressPrefix: '::/0' }], ['deny', 200, 'Deny'])).decision).toBe('Deny');
    // A v4 source and a v6 destination are not a flow: nothing is left undecided between families.
    expect(both.undecided).toEqual([]);
  });

  it('an Allow with application security groups counts as possibly allowing; a Deny with them does not deny', () => {
    const asg = [{ id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/admins' }];
    const allow = judge(nsgWith(['allow-admins', 100, 'Allow', { sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: asg }], ['deny', 200, 'Deny']));
    expect(allow.decision).toBe('Mixed');
    expect(allow.allowedBy).toHaveLength(1);
    expect(allow.allowedBy[0]).toMatchObject({ possible: true, rule: { name: 'allow-admins' } });
    expect(allow.reasons.join(' ')).toContain('application security groups');

    const deny = judge(nsgWith(['deny-admins', 100, 'Deny', { destinationAddressPrefix: undefined, destinationApplicationSecurityGroups: asg }]));
    expect(deny.decision).toBe('Allow');
    expect(deny.reasons.join(' ')).toContain('deny-admins');
  });

  it('never throws on values that are not addresses or ports, and says so', () => {
    const r = judge(nsgWith(['weird', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/99!' }], ['weird-ports', 101, 'Deny', { destinationPortRange: 'ssh' }]));
    expect(r.decision).toBe('Allow');
    expect(r.reasons.join(' ')).toContain('10.240.0.0/99!');
  });

  it('ignores Outbound default rules for an inbound flow, and judges outbound flows by them', () => {
    const nsg = loadNsg();
    const outbound = evaluateNsgAccess(rulesOfNsg(nsg), { ...ssh(['10.240.0.0/24'], ['203.0.113.5']), direction: 'Outbound' }, VNET);
    expect(outbound.allowedBy.map((o) => o.rule.name)).toEqual(['AllowInternetOutBound']);
  });

  it('leaves flows no rule matches undecided (denied by Azure)', () => {
    const only: ArmSecurityRule[] = [securityRule(loadNsg(), 'deny-half', 100, 'Deny', { sourceAddressPrefix: '10.240.0.0/25' })];
    const r = evaluateNsgAccess(only, ssh(['10.240.0.0/24']), VNET);
    expect(r.decision).toBe('Deny');
    expect(r.undecided.map((u) => u.sources.toCidrs())).toEqual([['10.240.0.128/25']]);
  });
});
