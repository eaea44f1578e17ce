// NetGuard's custom role must hold exactly what the code needs: every ARM request the ArmGateway makes
// (driven for real against the sandbox) maps to an action in the role, and every action in the role is
// used by at least one of those requests.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import { actionForRequest, NETGUARD_ROLE_ACTIONS, NETGUARD_ROLE_DATA_ACTIONS, roleAllows } from '../../shared/azure/permissions';
import { ArmSandbox } from '../../testkit/armServer';
import { CONTROLS } from '../../shared/controls/index';
import { permissionsOf } from '../../shared/controls/needs';

const SUB = '6a8f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'azure');

function exampleBody<T>(file: string): T {
  const example = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as { responses: Record<string, { body: T }> };
  return example.responses['200'].body;
}

/** The published examples use placeholder subscriptions ("subid", zeros); move them into ours. */
function inOurSubscription<T>(resource: T): T {
  return JSON.parse(JSON.stringify(resource).replace(/\/subscriptions\/(subid|00000000-0000-0000-0000-000000000000)\//gi, `/subscriptions/${SUB}/`));
}

describe('actionForRequest', () => {
  const rg = `/subscriptions/${SUB}/resourceGroups/rg1`;
  it.each([
    ['GET', '/subscriptions', 'Microsoft.Resources/subscriptions/read'],
    ['GET', `/subscriptions/${SUB}`, 'Microsoft.Resources/subscriptions/read'],
    ['GET', `${rg}`, 'Microsoft.Resources/subscriptions/resourceGroups/read'],
    ['GET', `/subscriptions/${SUB}/providers/Microsoft.ContainerService/managedClusters`, 'Microsoft.ContainerService/managedClusters/read'],
    ['GET', `${rg}/providers/Microsoft.ContainerService/managedClusters/aks1`, 'Microsoft.ContainerService/managedClusters/read'],
    ['PUT', `${rg}/providers/Microsoft.ContainerService/managedClusters/aks1`, 'Microsoft.ContainerService/managedClusters/write'],
    ['PUT', `${rg}/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1`, 'Microsoft.ContainerService/managedClusters/agentPools/write'],
    [
      'GET',
      `/subscriptions/${SUB}/providers/Microsoft.ContainerService/locations/eastus/operations/8f2b1c3a-0000-4000-8000-000000000001`,
      'Microsoft.ContainerService/locations/operations/read',
    ],
    ['GET', `${rg}/providers/Microsoft.Network/networkSecurityGroups/nsg1`, 'Microsoft.Network/networkSecurityGroups/read'],
    ['GET', `${rg}/providers/Microsoft.Network/networkSecurityGroups/nsg1/securityRules/r1`, 'Microsoft.Network/networkSecurityGroups/securityRules/read'],
    ['PUT', `${rg}/providers/Microsoft.Network/networkSecurityGroups/nsg1/securityRules/r1`, 'Microsoft.Network/networkSecurityGroups/securityRules/write'],
    ['DELETE', `${rg}/providers/Microsoft.Network/networkSecurityGroups/nsg1/securityRules/r1`, 'Microsoft.Network/networkSecurityGroups/securityRules/delete'],
    ['GET', `/subscriptions/${SUB}/providers/Microsoft.Network/locations/westus/operations/abc`, 'Microsoft.Network/locations/operations/read'],
    ['GET', `/subscriptions/${SUB}/providers/Microsoft.Network/virtualNetworks`, 'Microsoft.Network/virtualNetworks/read'],
    ['GET', `${rg}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/s1`, 'Microsoft.Network/virtualNetworks/subnets/read'],
    [
      'POST',
      `${rg}/providers/Microsoft.ContainerService/managedClusters/aks1/listClusterUserCredential`,
      'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action',
    ],
  ])('%s %s needs %s', (method, requestPath, action) => {
    expect(actionForRequest(method, requestPath)).toBe(action);
  });

  it('ignores the host, the query and the case ARM ignores', () => {
    const url = `https://management.azure.com/SUBSCRIPTIONS/${SUB}/resourcegroups/RG1/providers/microsoft.network/networksecuritygroups/NSG1/securityrules/x?api-version=2026-01-01`;
    expect(actionForRequest('put', url)).toBe('Microsoft.Network/networkSecurityGroups/securityRules/write');
  });

  it('answers undefined for what is not an ARM resource request', () => {
    expect(actionForRequest('GET', '/')).toBeUndefined();
    expect(actionForRequest('GET', '/metadata/endpoints')).toBeUndefined();
    expect(actionForRequest('OPTIONS', `/subscriptions/${SUB}`)).toBeUndefined();
    expect(actionForRequest('GET', `/subscriptions/${SUB}/providers`)).toBeUndefined();
  });

  it('gives every role action a reason, once', () => {
    const actions = NETGUARD_ROLE_ACTIONS.map((a) => a.action.toLowerCase());
    expect(new Set(actions).size).toBe(actions.length);
    for (const a of NETGUARD_ROLE_ACTIONS) expect(a.reason.length).toBeGreaterThan(20);
  });

  it('grants no wildcard, no delete, and nothing beyond networking, clusters and subscription reads', () => {
    for (const { action } of NETGUARD_ROLE_ACTIONS) {
      expect(action).not.toContain('*');
      expect(action).not.toMatch(/\/delete$/i);
      expect(action).toMatch(/^Microsoft\.(Network|ContainerService|Resources\/subscriptions)\//);
    }
    // Kubernetes: read namespaces, read and write NetworkPolicies, nothing else (DESIGN.md).
    expect(NETGUARD_ROLE_DATA_ACTIONS.map((a) => a.action).sort()).toEqual([
      'Microsoft.ContainerService/managedClusters/namespaces/read',
      'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/read',
      'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/write',
    ]);
    expect(roleAllows('Microsoft.Network/networkSecurityGroups/write')).toBe(false);
    expect(roleAllows('Microsoft.Network/virtualNetworks/subnets/write')).toBe(false);
    expect(roleAllows('Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action')).toBe(false);
  });
});

describe('the custom role against the requests ArmGateway really makes', () => {
  let sandbox: ArmSandbox;
  let gateway: ArmGateway;
  let cluster: ArmManagedCluster;
  let nsg: ArmNetworkSecurityGroup;
  let vnet: ArmVirtualNetwork;

  beforeAll(async () => {
    sandbox = await ArmSandbox.start({ subscriptions: [SUB] });
    cluster = sandbox.put(inOurSubscription(exampleBody<ArmManagedCluster>('arm-aks-2026-01-01/ManagedClustersGet.json')));
    nsg = sandbox.put(inOurSubscription(exampleBody<ArmNetworkSecurityGroup>('arm-network-2026-01-01/NetworkSecurityGroupGet.json')));
    vnet = sandbox.put(inOurSubscription(exampleBody<ArmVirtualNetwork>('arm-network-2026-01-01/VirtualNetworkGet.json')));
    gateway = new ArmGateway({ endpoint: sandbox.endpoint, pollIntervalMs: 5, retryOptions: { maxRetries: 0 } });
  });

  afterAll(async () => {
    await sandbox.stop();
  });

  it('covers every request of a sweep, a rule repair and a cluster update, and uses every action it grants', async () => {
    // A sweep: list subscriptions, then read the inventory; an event: re-read one resource of each kind.
    expect(await gateway.listSubscriptionIds()).toContain(SUB);
    const inventory = await gateway.readInventory(SUB);
    expect(inventory.clusters.map((c) => c.id.toLowerCase())).toContain(cluster.id.toLowerCase());
    const { cluster: read, etag } = await gateway.getCluster(cluster.id);
    await gateway.getNsg(nsg.id);
    await gateway.getVnet(vnet.id);
    // instance-metadata: the API server address of a cluster (a POST that reads).
    expect(await gateway.listClusterUserCredential(cluster.id)).toContain('server:');

    // node-ssh-deny: create NetGuard's rule, then repair it with its ETag.
    const ruleName = 'aks-netguard-deny-node-ssh';
    const properties = {
      protocol: 'Tcp',
      sourcePortRange: '*',
      destinationPortRange: '22',
      sourceAddressPrefix: '10.0.1.0/24',
      destinationAddressPrefix: 'VirtualNetwork',
      access: 'Deny',
      priority: 100,
      direction: 'Inbound',
    };
    await gateway.putSecurityRule(nsg.id, ruleName, properties);
    const rule = await gateway.getSecurityRule(nsg.id, ruleName);
    expect(rule?.properties.access).toBe('Deny');
    await gateway.putSecurityRule(nsg.id, ruleName, { ...properties, priority: 101 }, rule?.etag);

    // A cluster remediation: send it back with If-Match and follow the operation to its end.
    const op = await gateway.startClusterUpdate(read, etag);
    expect(op.statusUrl).toBeDefined();
    await gateway.waitForOperation(op);

    const requests = sandbox.findRequests();
    expect(requests.length).toBeGreaterThan(10);
    const unmapped = requests.filter((r) => actionForRequest(r.method, r.path) === undefined).map((r) => `${r.method} ${r.path}`);
    expect(unmapped).toEqual([]);

    const needed = new Set(requests.map((r) => actionForRequest(r.method, r.path)!.toLowerCase()));
    const notInRole = [...needed].filter((a) => !roleAllows(a));
    expect(notInRole).toEqual([]);

    const unused = NETGUARD_ROLE_ACTIONS.map((a) => a.action).filter((a) => !needed.has(a.toLowerCase()));
    expect(unused).toEqual([]);

    // Every write the code made is one the role grants, and they are the only two kinds of write.
    const writes = new Set(requests.filter((r) => r.method !== 'GET' && !/\/listClusterUserCredential$/i.test(r.path)).map((r) => actionForRequest(r.method, r.path)));
    expect([...writes].sort()).toEqual([
      'Microsoft.ContainerService/managedClusters/write',
      'Microsoft.Network/networkSecurityGroups/securityRules/write',
    ]);
  });
});

describe('the role is what the controls declare', () => {
  const actionsOf = (controls: Parameters<typeof permissionsOf>[0]) => {
    const p = permissionsOf(controls);
    return { actions: p.actions.map((a) => a.action).sort(), dataActions: p.dataActions.map((a) => a.action).sort() };
  };

  test('NETGUARD_ROLE_ACTIONS and NETGUARD_ROLE_DATA_ACTIONS add up the declarations of CONTROLS', () => {
    expect(actionsOf(CONTROLS)).toEqual({ actions: NETGUARD_ROLE_ACTIONS.map((a) => a.action).sort(), dataActions: NETGUARD_ROLE_DATA_ACTIONS.map((a) => a.action).sort() });
  });

  test('a control that reads cluster properties and changes nothing adds nothing to the role', () => {
    const readsOnly = { needs: { reads: ['cluster-properties'] as const, changes: [] as const } };
    expect(actionsOf([...CONTROLS, readsOnly])).toEqual(actionsOf(CONTROLS));
  });

  test('without the control that reads Kubernetes objects, the role has no data action and no kubeconfig action', () => {
    const without = actionsOf(CONTROLS.filter((c) => !c.needs.reads.includes('kubernetes-objects')));
    expect(without.dataActions).toEqual([]);
    expect(without.actions).not.toContain('Microsoft.ContainerService/managedClusters/listClusterUserCredential/action');
  });
});
