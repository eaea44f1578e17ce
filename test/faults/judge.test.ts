// The fault suite's own judges must be able to say "bad": checked here on hand-made cases, including
// the repair of issue 9 item 1 (a broadened NetGuard Deny rewritten to the AKS sources only).
import type { ArmManagedCluster, ArmNetworkSecurityGroup } from '../../shared/azure/armTypes';
import { AddressSet } from '../../shared/net/addressSet';
import { netGuardSshDenyRule, nsgFromFixture, securityRule } from '../../testkit/fleet';
import type { ProxiedRequest } from './faultProxy';
import { clusterWidening, nsgWidening } from './judge';
import { outOfScope } from './scenarios';

const SUB = '11111111-2222-4333-8444-555555555555';
const space = AddressSet.fromPrefixes(['10.40.0.0/16']);

function nsg(rules: Parameters<typeof nsgFromFixture>[0]['securityRules']): ArmNetworkSecurityGroup {
  return nsgFromFixture({ subscriptionId: SUB, resourceGroup: 'rg', name: 'nsg', securityRules: rules });
}

const allowVnet = securityRule('allow-ssh-vnet', { protocol: 'Tcp', sourceAddressPrefix: 'VirtualNetwork', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 300, direction: 'Inbound' });
const allowAny = securityRule('allow-ssh-any', { protocol: 'Tcp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 500, direction: 'Inbound' });

test('rewriting a broadened NetGuard Deny to the AKS sources only is a widening (SSH from the internet opens)', () => {
  const before = nsg([allowVnet, netGuardSshDenyRule(['*'], 400), allowAny]);
  const after = nsg([allowVnet, netGuardSshDenyRule(['10.40.0.0/22'], 400), allowAny]);
  const widened = nsgWidening(before, after, space);
  expect(widened).toMatch(/^Inbound Tcp\/22 from /);
  expect(AddressSet.fromPrefixes(widened!.split(' from ')[1].split(' to ')[0].split(',')).containsAll(AddressSet.fromPrefixes(['0.0.0.0/5']))).toBe(true);
});

test('adding a Deny in front of the shadowing Allow restricts only: not a widening', () => {
  const before = nsg([allowVnet, netGuardSshDenyRule(['*'], 400), allowAny]);
  const after = nsg([netGuardSshDenyRule(['10.40.0.0/22'], 200), allowVnet, securityRule('kept', { ...netGuardSshDenyRule(['*'], 400).properties }), allowAny]);
  expect(nsgWidening(before, after, space)).toBeUndefined();
});

test('a new Allow on another port and protocol is a widening too (every flow counts, not just SSH)', () => {
  const before = nsg([]);
  const after = nsg([securityRule('dns', { protocol: 'Udp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '53', access: 'Allow', priority: 100, direction: 'Outbound' })]);
  // AllowInternetOutBound already allowed the Internet; the new rule also opens outbound to the VNet.
  expect(nsgWidening(before, after, space)).toMatch(/^Outbound Udp\/53 .* to 10\.40\.0\.0\/16$/);
  const inbound = nsg([securityRule('rdp', { protocol: 'Tcp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '3389', access: 'Allow', priority: 100, direction: 'Inbound' })]);
  expect(nsgWidening(before, inbound, space)).toMatch(/^Inbound Tcp\/3389 /);
});

test('cluster writes: opening the API server (cleared ranges, two /1s) or enabling the routing add-on widens; restoring ranges does not', () => {
  const cluster = (ranges: string[] | undefined, routing = false) =>
    ({ id: 'c', properties: { apiServerAccessProfile: ranges ? { authorizedIPRanges: ranges } : {}, addonProfiles: { httpApplicationRouting: { enabled: routing } } } }) as unknown as ArmManagedCluster;
  expect(clusterWidening(cluster(['203.0.113.0/24']), cluster([]))).toMatch(/API server/);
  expect(clusterWidening(cluster(['203.0.113.0/24']), cluster(['0.0.0.0/1', '128.0.0.0/1']))).toMatch(/API server/);
  expect(clusterWidening(cluster([]), cluster(['203.0.113.0/24']))).toBeUndefined();
  expect(clusterWidening(cluster(['203.0.113.0/24']), cluster(['203.0.113.0/24'], true))).toBe('httpApplicationRouting enabled');
});

test('out-of-scope calls: another subscription, the tenant, dot segments and smuggled query parameters; Kubernetes paths are left alone', () => {
  const req = (method: string, rawUrl: string): ProxiedRequest => {
    const u = new URL(rawUrl, 'http://x');
    const query: Record<string, string> = {};
    u.searchParams.forEach((v, k) => (query[k] = v));
    return { seq: 1, method, rawUrl, path: decodeURIComponent(u.pathname), query, headers: {}, forwarded: true, upstreamStatus: 200, status: 200 };
  };
  const cluster = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks`;
  expect(outOfScope(req('GET', `${cluster}?api-version=2026-01-01`), SUB)).toBeUndefined();
  expect(outOfScope(req('GET', `/subscriptions/${SUB}/providers/Microsoft.Network/networkSecurityGroups?api-version=1&$skipToken=abc`), SUB)).toBeUndefined();
  expect(outOfScope(req('GET', '/api/v1/namespaces?limit=500'), SUB)).toBeUndefined();
  expect(outOfScope(req('PUT', `${cluster.replace(SUB, '99999999-2222-4333-8444-555555555555')}?api-version=1`), SUB)).toMatch(/outside/);
  expect(outOfScope(req('GET', '/subscriptions?api-version=2022-12-01'), SUB)).toMatch(/outside/);
  expect(outOfScope(req('GET', `/subscriptions/${SUB}/..?api-version=1`), SUB)).toMatch(/dot segment/);
  expect(outOfScope(req('GET', `${cluster}?api-version=1&y=&api-version=2026-01-01`), SUB)).toMatch(/query parameter "y"/);
});
