// The write gate on hand-picked cases: what it must refuse (each with the reason a person reads) and
// what it must let through (NetGuard's own fixes). The random cases are in neverWiden.property.test.ts.
import type { ArmSecurityRule, SecurityRuleProperties } from '../../shared/azure/armTypes';
import type { KubeNetworkPolicyChange, KubeNetworkPolicyWrite, SecurityRuleChange } from '../../shared/controls/types';
import { OWN_POLICY_NAME, ownPolicyObject, ownPolicySpec, parseNetworkPolicy } from '../../shared/kube/networkPolicy';
import { judgeWrite } from '../../shared/engine/writeGate';
import { compareNsgAccess, describeFlowBox } from '../../shared/net/accessDiff';
import { AddressSet } from '../../shared/net/addressSet';
import { rulesOfNsg } from '../../shared/net/nsgEvaluator';
import { nsgWith, plainDefaultRules } from './reference';

const NSG_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg';
const base: SecurityRuleProperties = {
  protocol: 'Tcp',
  sourcePortRange: '*',
  sourceAddressPrefix: '*',
  destinationAddressPrefix: '*',
  destinationPortRange: '22',
  access: 'Deny',
  priority: 400,
  direction: 'Inbound',
};
const rule = (name: string, props: Partial<SecurityRuleProperties>): ArmSecurityRule => ({ name, properties: { ...base, ...props } });
const write = (name: string, after: Partial<SecurityRuleProperties>): SecurityRuleChange => ({
  kind: 'security-rule',
  nsgId: NSG_ID,
  ruleName: name,
  after: { ...base, ...after },
  needsPerson: false,
  summary: 'test',
});
/** Default rules spelled with addresses, so only what a test adds is unknown. */
const verdict = (rules: ArmSecurityRule[], change: SecurityRuleChange, defaults = plainDefaultRules(NSG_ID)) => judgeWrite(change, { nsg: nsgWith(NSG_ID, rules, defaults) });

describe('the write gate on security rules', () => {
  const allowAll = rule('allow-all', { access: 'Allow', priority: 500 });

  test('refuses moving a Deny behind an Allow, and says which flows would open', () => {
    const v = verdict([rule('deny', {}), allowAll], write('deny', { priority: 600 }));
    expect(v.allowed).toBe(false);
    expect(!v.allowed && v.reason).toMatch(/would allow traffic that is denied now: Inbound Tcp from any IPv4 address to any IPv4 address, port 22/);
  });

  test('allows moving a Deny earlier, adding sources or ports to it, and narrowing an Allow', () => {
    expect(verdict([rule('deny', {}), allowAll], write('deny', { priority: 300 }))).toEqual({ allowed: true });
    expect(verdict([rule('deny', { sourceAddressPrefix: '10.0.0.0/8' }), allowAll], write('deny', { sourceAddressPrefix: '*' }))).toEqual({ allowed: true });
    expect(verdict([rule('deny', {}), allowAll], write('deny', { destinationPortRange: undefined, destinationPortRanges: ['22', '3389'] }))).toEqual({ allowed: true });
    expect(verdict([allowAll], write('allow-all', { access: 'Allow', priority: 500, sourceAddressPrefix: '203.0.113.0/24' }))).toEqual({ allowed: true });
    const allowRange = rule('allow-range', { access: 'Allow', priority: 500, destinationPortRange: '20-30' });
    expect(verdict([allowRange], write('allow-range', { access: 'Allow', priority: 500, destinationPortRange: '20-21' }))).toEqual({ allowed: true });
    // A port outside what it allowed is an opening, however small the range.
    expect(verdict([allowRange], write('allow-range', { access: 'Allow', priority: 500, destinationPortRange: '19-21' })).allowed).toBe(false);
  });

  test('refuses a Deny that is removed in effect: fewer ports, fewer sources, another protocol, only some source ports', () => {
    const deny = rule('deny', { destinationPortRanges: ['22', '3389'], destinationPortRange: undefined });
    expect(verdict([deny, allowAll], write('deny', {})).allowed).toBe(false);
    expect(verdict([rule('deny', {}), allowAll], write('deny', { sourceAddressPrefix: '10.0.0.0/8' })).allowed).toBe(false);
    expect(verdict([rule('deny', {}), rule('allow-udp', { access: 'Allow', priority: 500, protocol: '*' })], write('deny', { protocol: 'Udp' })).allowed).toBe(false);
    expect(verdict([rule('deny', {}), allowAll], write('deny', { sourcePortRange: '1024-65535' })).allowed).toBe(false);
  });

  test('knows ICMP has no ports: a Deny of * on port 22 also denies ICMP, and dropping that opens ICMP', () => {
    const allowAny = rule('allow-any', { access: 'Allow', priority: 500, protocol: '*', destinationPortRange: '*' });
    const before = rulesOfNsg(nsgWith(NSG_ID, [rule('deny', { protocol: '*' }), allowAny], plainDefaultRules(NSG_ID)));
    const after = rulesOfNsg(nsgWith(NSG_ID, [rule('deny', { protocol: 'Tcp' }), allowAny], plainDefaultRules(NSG_ID)));
    const opened = compareNsgAccess(before, after, { virtualNetwork: AddressSet.empty() }).widened.map(describeFlowBox);
    expect(opened.some((f) => /Inbound Icmp from .* any port/.test(f))).toBe(true);
    expect(opened.some((f) => /Inbound Udp\/Esp\/Ah from .* port 22$/.test(f))).toBe(true);
  });

  test('compares outbound rules as well as inbound ones', () => {
    const allowOut = rule('allow-out', { access: 'Allow', priority: 500, direction: 'Outbound' });
    expect(verdict([rule('deny-out', { direction: 'Outbound' }), allowOut], write('deny-out', { direction: 'Inbound' })).allowed).toBe(false);
  });

  test('does not guess what an application security group holds: a change safe only if it is empty is refused', () => {
    const asg = [{ id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/web' }];
    const allowAsg = rule('allow-web', { access: 'Allow', priority: 500, sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: asg });
    const v = verdict([rule('deny', { sourceAddressPrefix: '10.0.0.0/8' }), allowAsg], write('deny', { sourceAddressPrefix: '10.0.0.0/9' }));
    expect(v.allowed).toBe(false);
    expect(!v.allowed && v.reason).toMatch(/application security group web/);
    // An ASG rule that is not touched and a change that is safe whatever it holds: allowed.
    expect(verdict([rule('deny', {}), allowAsg], write('deny', { priority: 300 }))).toEqual({ allowed: true });
  });

  test('does not assume the VirtualNetwork tag ends at the VNet: a peered address can be opened too', () => {
    // The Deny of 172.16.0.0/12 matters only if that space is in VirtualNetwork (peering, gateway).
    const allowVnet = rule('allow-vnet', { access: 'Allow', priority: 500, sourceAddressPrefix: 'VirtualNetwork' });
    const rules = [rule('deny', { sourceAddressPrefix: '172.16.0.0/12' }), allowVnet];
    const v = verdict(rules, write('deny', { sourceAddressPrefix: '172.16.0.0/13' }), undefined);
    expect(v.allowed).toBe(false);
    expect(!v.allowed && v.reason).toMatch(/VirtualNetwork tag beyond the VNet's own space/);
  });

  test('refuses when the NSG as read is not at hand, and when too many unknowns make it unprovable', () => {
    expect(judgeWrite(write('deny', {}), {}).allowed).toBe(false);
    const many = Array.from({ length: 12 }, (_, i) =>
      rule(`asg${i}`, { access: 'Allow', priority: 500 + i, sourceAddressPrefix: undefined, sourceApplicationSecurityGroups: [{ id: `/x/applicationSecurityGroups/g${i}` }] }),
    );
    const v = verdict([rule('deny', {}), ...many], write('deny', { priority: 300 }));
    expect(v.allowed).toBe(false);
    expect(!v.allowed && v.reason).toMatch(/too many/);
  });

  test('many service tags on rules the change cannot touch (outbound 443) do not make it unprovable', () => {
    const tags = ['Storage', 'Sql', 'AzureMonitor', 'AzureKeyVault', 'EventHub', 'ServiceBus', 'AzureCloud', 'AzureActiveDirectory', 'AzureContainerRegistry', 'MicrosoftContainerRegistry', 'AzureFrontDoor.Backend', 'GatewayManager'];
    const outbound = tags.map((tag, i) => rule(`out-${i}`, { access: 'Allow', priority: 1000 + i, direction: 'Outbound', destinationAddressPrefix: tag, destinationPortRange: '443' }));
    expect(verdict([rule('deny', { sourceAddressPrefix: '10.0.0.0/24' }), allowAll, ...outbound], write('deny', { sourceAddressPrefix: '10.0.0.0/16' }))).toEqual({ allowed: true });
  });

  test('an unchanged write changes nothing', () => {
    expect(verdict([rule('deny', {}), allowAll], write('deny', {}))).toEqual({ allowed: true });
    expect(compareNsgAccess(rulesOfNsg(nsgWith(NSG_ID, [allowAll])), rulesOfNsg(nsgWith(NSG_ID, [allowAll])), { virtualNetwork: AddressSet.empty() })).toEqual({ widened: [], narrowed: [], narrowedBeyondIntended: [] });
  });

  test('reports the narrowed flows too, and which of them go beyond what was meant', () => {
    const before = rulesOfNsg(nsgWith(NSG_ID, [allowAll]));
    const after = rulesOfNsg(nsgWith(NSG_ID, [rule('deny', { priority: 300 }), allowAll]));
    const meant = rule('deny', { priority: 300, sourceAddressPrefix: '10.0.0.0/24' });
    const diff = compareNsgAccess(before, after, { virtualNetwork: AddressSet.fromPrefixes(['10.0.0.0/16']) }, { intended: [meant] });
    expect(diff.widened).toEqual([]);
    expect(diff.narrowed.length).toBeGreaterThan(0);
    expect(diff.narrowedBeyondIntended.map(describeFlowBox).join(' ')).not.toMatch(/from 10\.0\.0\.0\/24 /);
    expect(diff.narrowedBeyondIntended.map(describeFlowBox).join(' ')).toMatch(/0\.0\.0\.0\/5/);
  });
});

describe('the write gate on NetworkPolicies (instance-metadata)', () => {
  const CLUSTER = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks';
  const policy = (namespace: string, name: string, spec: Record<string, unknown>, resourceVersion = '7') =>
    parseNetworkPolicy({ metadata: { name, namespace, resourceVersion }, spec });
  const change = (writes: KubeNetworkPolicyWrite[]): KubeNetworkPolicyChange => ({
    kind: 'kube-network-policy',
    clusterId: CLUSTER,
    writes,
    leftToPerson: [],
    needsPerson: false,
    after: writes.map((w) => w.after),
    summary: 'test',
  });
  const create = (namespace: string, after = ownPolicyObject(namespace)): KubeNetworkPolicyWrite => ({ namespace, name: OWN_POLICY_NAME, method: 'create', after });
  const replace = (namespace: string, resourceVersion = '7'): KubeNetworkPolicyWrite => ({ namespace, name: OWN_POLICY_NAME, method: 'replace', resourceVersion, after: ownPolicyObject(namespace, resourceVersion) });
  const reason = (v: ReturnType<typeof judgeWrite>) => (v.allowed ? 'allowed' : v.reason);

  test("creating NetGuard's policy where no policy isolates egress is allowed (ingress policies do not count)", () => {
    const policies = [policy('default', 'ingress-only', { podSelector: {}, policyTypes: ['Ingress'] }), policy('shop', 'deny', { podSelector: {}, policyTypes: ['Egress'] })];
    expect(judgeWrite(change([create('default')]), { kubePolicies: policies })).toEqual({ allowed: true });
  });

  test('creating it where an egress policy exists is refused: it could widen what that policy restricts', () => {
    const policies = [policy('shop', 'deny', { podSelector: {}, policyTypes: ['Egress'] })];
    expect(reason(judgeWrite(change([create('shop')]), { kubePolicies: policies }))).toMatch(/could widen the egress of pods that the egress policies deny restrict/);
  });

  test("any other object is refused: another name, or NetGuard's name with a wider spec", () => {
    const wider = ownPolicyObject('default') as { spec: { egress: Array<{ to: unknown[] }> } };
    wider.spec.egress[0].to = [{ ipBlock: { cidr: '0.0.0.0/0' } }];
    expect(reason(judgeWrite(change([create('default', wider as Record<string, unknown>)]), { kubePolicies: [] }))).toMatch(/not the policy NetGuard writes/);
    expect(reason(judgeWrite(change([{ ...create('default'), name: 'allow-all' }]), { kubePolicies: [] }))).toMatch(/not NetGuard's own/);
  });

  test("putting NetGuard's policy back: only over its own policy as read, when that widens nothing, on the version that was read", () => {
    const widened = ownPolicySpec() as { egress: Array<{ to: Array<{ ipBlock?: { except?: string[] } }> }> };
    delete widened.egress[0].to[0].ipBlock!.except;
    const widenedByPerson = [policy('default', OWN_POLICY_NAME, widened as Record<string, unknown>)];
    expect(judgeWrite(change([replace('default')]), { kubePolicies: widenedByPerson })).toEqual({ allowed: true });
    expect(reason(judgeWrite(change([replace('default', '6')]), { kubePolicies: widenedByPerson }))).toMatch(/changed since it was judged/);

    const narrowed = [policy('default', OWN_POLICY_NAME, { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] })];
    expect(reason(judgeWrite(change([replace('default')]), { kubePolicies: narrowed }))).toMatch(/would widen what some pods may reach/);
    expect(reason(judgeWrite(change([replace('default')]), { kubePolicies: [] }))).toMatch(/not there as read/);
  });

  test('without the policies as read, nothing is written', () => {
    expect(reason(judgeWrite(change([create('default')]), {}))).toMatch(/not at hand/);
  });
});
