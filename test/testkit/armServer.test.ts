// The ARM sandbox driven by the real Azure SDK clients (and raw requests through their pipelines).
import { createDefaultHttpClient, createPipelineRequest } from '@azure/core-rest-pipeline';
import { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture, nsgFromFixture, securityRule, vnetWithSubnets } from '../../testkit/fleet';
import { loadNsg } from '../net/azureFixtures';
import { sandboxClients, type SandboxClients } from '../../testkit/sdkClients';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';

const SUB = '11111111-2222-3333-4444-555555555555';
const RG = 'rg-test';
const FAST = { updateIntervalInMs: 5 };

let sandbox: ArmSandbox;
let clients: SandboxClients;

beforeEach(async () => {
  sandbox = await ArmSandbox.start({ subscriptions: [{ id: SUB, displayName: 'Test subscription' }] });
  clients = sandboxClients(sandbox.endpoint, SUB, { retryOptions: { retryDelayInMs: 5, maxRetryDelayInMs: 20 } });
});

afterEach(async () => {
  await sandbox.stop();
});

function nsgId(name: string, rg = RG): string {
  return `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.Network/networkSecurityGroups/${name}`;
}

function seedNsg(name: string, rules: ArmSecurityRule[] = []): ArmNetworkSecurityGroup {
  return sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: RG, name, securityRules: rules }));
}

const sshDeny = {
  protocol: 'Tcp',
  sourcePortRange: '*',
  sourceAddressPrefix: '10.1.0.0/22',
  destinationAddressPrefix: 'VirtualNetwork',
  destinationPortRange: '22',
  access: 'Deny',
  priority: 200,
  direction: 'Inbound',
};

/** A raw request through a client's own pipeline (auth policy included). */
async function raw(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: string) {
  const request = createPipelineRequest({ url: `${sandbox.endpoint}${path}`, method, body, allowInsecureConnection: true });
  if (body !== undefined) request.headers.set('Content-Type', 'application/json');
  const response = await clients.network.pipeline.sendRequest(createDefaultHttpClient(), request);
  return { status: response.status, headers: response.headers, json: response.bodyAsText ? JSON.parse(response.bodyAsText) : undefined };
}

async function collect<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iter) out.push(x);
  return out;
}

describe('subscriptions', () => {
  test('lists and gets the sandbox subscriptions', async () => {
    sandbox.addSubscription('99999999-0000-0000-0000-000000000000', 'Second');
    const subs = await collect(clients.subscriptions.subscriptions.list());
    expect(subs.map((s) => s.subscriptionId).sort()).toEqual([SUB, '99999999-0000-0000-0000-000000000000'].sort());
    const one = await clients.subscriptions.subscriptions.get(SUB);
    expect(one.displayName).toBe('Test subscription');
    expect(one.state).toBe('Enabled');
  });

  test('an unknown subscription answers 404 SubscriptionNotFound', async () => {
    const other = sandboxClients(sandbox.endpoint, 'not-a-known-sub');
    await expect(collect(other.network.networkSecurityGroups.listAll())).rejects.toMatchObject({ statusCode: 404, code: 'SubscriptionNotFound' });
  });
});

describe('listing and paging', () => {
  test('SDK iterators follow nextLink across pages, per subscription and per resource group', async () => {
    sandbox.pageSize = 2;
    for (let i = 0; i < 5; i++) seedNsg(`nsg-${i}`);
    sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: 'rg-other', name: 'elsewhere' }));
    for (let i = 0; i < 3; i++) sandbox.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: `aks-${i}` }));
    sandbox.put(vnetWithSubnets({ subscriptionId: SUB, resourceGroup: RG, name: 'v1', subnets: [{ name: 'a', addressPrefix: '10.0.1.0/24' }] }));
    sandbox.put(vnetWithSubnets({ subscriptionId: SUB, resourceGroup: 'rg-other', name: 'v2', subnets: [] }));

    const all = await collect(clients.network.networkSecurityGroups.listAll());
    expect(all.map((n) => n.name)).toEqual(['nsg-0', 'nsg-1', 'nsg-2', 'nsg-3', 'nsg-4', 'elsewhere']);
    expect(sandbox.countRequests((r) => /networkSecurityGroups$/.test(r.path) && r.query.$skiptoken !== undefined)).toBe(2);

    const inRg = await collect(clients.network.networkSecurityGroups.list(RG));
    expect(inRg).toHaveLength(5);

    const aks = await collect(clients.containerService.managedClusters.list());
    expect(aks.map((c) => c.name).sort()).toEqual(['aks-0', 'aks-1', 'aks-2']);
    expect(await collect(clients.containerService.managedClusters.listByResourceGroup('rg-other'))).toEqual([]);

    const vnets = await collect(clients.network.virtualNetworks.listAll());
    expect(vnets.map((v) => v.name)).toEqual(['v1', 'v2']);
    const subnets = await collect(clients.network.subnets.list(RG, 'v1'));
    expect(subnets.map((s) => s.addressPrefix)).toEqual(['10.0.1.0/24']);
  });
});

describe('NSGs and security rules', () => {
  test('a new NSG gets the six default rules exactly as Azure publishes them', async () => {
    const poller = clients.network.networkSecurityGroups.createOrUpdate(RG, 'fresh', { location: 'westus' }, FAST);
    const created = await poller;
    expect(created.provisioningState).toBe('Succeeded');
    const published = loadNsg().properties.defaultSecurityRules!;
    const stored = sandbox.get<ArmNetworkSecurityGroup>(nsgId('fresh'))!;
    expect(stored.properties.defaultSecurityRules!.map((r) => ({ name: r.name, properties: r.properties }))).toEqual(
      published.map((r) => ({ name: r.name, properties: r.properties })),
    );
    expect(stored.properties.defaultSecurityRules!.every((r) => r.id === `${nsgId('fresh')}/defaultSecurityRules/${r.name}`)).toBe(true);
  });

  test('create with If-None-Match: * succeeds once, then 412 without changing the rule', async () => {
    seedNsg('nsg1');
    const options = { ...FAST, requestOptions: { headers: { 'If-None-Match': '*' } } };
    const first = await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', sshDeny, options);
    expect(first.priority).toBe(200);
    expect(first.etag).toMatch(/^W\/".+"$/);
    expect(sandbox.findRequests({ method: 'PUT' })[0]).toMatchObject({ status: 201, headers: { 'if-none-match': '*' } });

    await expect(
      clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', { ...sshDeny, priority: 300 }, options),
    ).rejects.toMatchObject({ statusCode: 412, code: 'PreconditionFailed' });
    const rule = await clients.network.securityRules.get(RG, 'nsg1', 'deny-ssh');
    expect(rule.priority).toBe(200);
    const nsg = await clients.network.networkSecurityGroups.get(RG, 'nsg1');
    expect(nsg.securityRules?.map((r) => r.name)).toEqual(['deny-ssh']);
  });

  test('If-Match with a stale ETag is refused with 412; with the current one it applies', async () => {
    seedNsg('nsg1', [securityRule('deny-ssh', sshDeny)]);
    const read = await clients.network.securityRules.get(RG, 'nsg1', 'deny-ssh');
    // Someone else changes the NSG: Azure gives the NSG and all its rules a new ETag.
    const other = sandbox.get<ArmNetworkSecurityGroup>(nsgId('nsg1'))!;
    other.properties.securityRules!.push(securityRule('allow-web', { ...sshDeny, access: 'Allow', destinationPortRange: '443', priority: 300 }));
    sandbox.put({ ...other, etag: undefined });

    const stale = { ...FAST, requestOptions: { headers: { 'If-Match': read.etag! } } };
    const error = await clients.network.securityRules
      .createOrUpdate(RG, 'nsg1', 'deny-ssh', { ...sshDeny, priority: 150 }, stale)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 412, code: 'PreconditionFailed' });
    expect(sandbox.get<ArmSecurityRule>(`${nsgId('nsg1')}/securityRules/deny-ssh`)!.properties.priority).toBe(200);

    const fresh = await clients.network.securityRules.get(RG, 'nsg1', 'deny-ssh');
    expect(fresh.etag).not.toBe(read.etag);
    const updated = await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', { ...sshDeny, priority: 150 }, {
      ...FAST,
      requestOptions: { headers: { 'If-Match': fresh.etag! } },
    });
    expect(updated.priority).toBe(150);
    const nsg = sandbox.get<ArmNetworkSecurityGroup>(nsgId('nsg1'))!;
    expect(nsg.properties.securityRules!.find((r) => r.name === 'deny-ssh')!.properties.priority).toBe(150);
    expect(nsg.properties.securityRules!.every((r) => r.etag === nsg.etag)).toBe(true);
  });

  test('a rule write is long-running: Azure-AsyncOperation is polled, and the poll GETs carry no If-Match', async () => {
    seedNsg('nsg1');
    await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', sshDeny, {
      ...FAST,
      requestOptions: { headers: { 'If-None-Match': '*' } },
    });
    const put = sandbox.findRequests({ method: 'PUT' })[0];
    expect(put.body).toMatchObject({ properties: { destinationPortRange: '22', access: 'Deny' } });
    const polls = sandbox.findRequests({ method: 'GET', path: /\/providers\/Microsoft\.Network\/locations\/[^/]+\/operations\// });
    expect(polls).toHaveLength(1);
    expect(polls[0].status).toBe(200);
    expect(sandbox.findRequests({ method: 'GET' }).every((r) => r.headers['if-none-match'] === undefined)).toBe(true);
  });

  test('two rules with the same priority and direction are refused (SecurityRuleConflict)', async () => {
    seedNsg('nsg1', [securityRule('existing', sshDeny)]);
    await expect(
      clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'second', { ...sshDeny, destinationPortRange: '3389' }, FAST),
    ).rejects.toMatchObject({ statusCode: 400, code: 'SecurityRuleConflict' });
    await expect(
      clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'second', { ...sshDeny, priority: 50 }, FAST),
    ).rejects.toMatchObject({ statusCode: 400, code: 'SecurityRuleInvalidPriority' });
  });

  test('rules can be listed and deleted; unknown ones answer ResourceNotFound', async () => {
    seedNsg('nsg1', [securityRule('r1', sshDeny), securityRule('r2', { ...sshDeny, priority: 210 })]);
    expect((await collect(clients.network.securityRules.list(RG, 'nsg1'))).map((r) => r.name)).toEqual(['r1', 'r2']);
    await clients.network.securityRules.delete(RG, 'nsg1', 'r1', FAST);
    expect((await collect(clients.network.securityRules.list(RG, 'nsg1'))).map((r) => r.name)).toEqual(['r2']);
    await expect(clients.network.securityRules.get(RG, 'nsg1', 'r1')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    await expect(clients.network.networkSecurityGroups.get(RG, 'nope')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
  });

  test('ids are case-insensitive and keep the casing first written', async () => {
    seedNsg('MixedCase-NSG');
    const nsg = await clients.network.networkSecurityGroups.get('RG-TEST', 'mixedcase-nsg');
    expect(nsg.id).toBe(nsgId('MixedCase-NSG'));
    expect(sandbox.get(nsgId('MIXEDCASE-nsg', 'RG-Test'))).toBeDefined();
  });
});

describe('VNets, subnets and NSG back-references', () => {
  test('an NSG lists exactly the subnets that point at it, as they change', async () => {
    const nsg = seedNsg('nodes-nsg');
    sandbox.put(
      vnetWithSubnets({
        subscriptionId: SUB,
        resourceGroup: RG,
        name: 'vnet1',
        subnets: [
          { name: 'nodes', addressPrefix: '10.0.0.0/22', nsgId: nsg.id.toUpperCase() },
          { name: 'other', addressPrefix: '10.0.4.0/22' },
        ],
      }),
    );
    const vnetId = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/vnet1`;
    expect((await clients.network.networkSecurityGroups.get(RG, 'nodes-nsg')).subnets?.map((s) => s.id)).toEqual([`${vnetId}/subnets/nodes`]);

    await clients.network.subnets.createOrUpdate(RG, 'vnet1', 'other', { addressPrefix: '10.0.4.0/22', networkSecurityGroup: { id: nsg.id } }, FAST);
    expect((await clients.network.networkSecurityGroups.get(RG, 'nodes-nsg')).subnets?.map((s) => s.id).sort()).toEqual(
      [`${vnetId}/subnets/nodes`, `${vnetId}/subnets/other`].sort(),
    );

    await clients.network.subnets.createOrUpdate(RG, 'vnet1', 'nodes', { addressPrefix: '10.0.0.0/22' }, FAST);
    await clients.network.subnets.createOrUpdate(RG, 'vnet1', 'other', { addressPrefix: '10.0.4.0/22' }, FAST);
    expect((await clients.network.networkSecurityGroups.get(RG, 'nodes-nsg')).subnets ?? []).toEqual([]);
    const subnet = await clients.network.subnets.get(RG, 'vnet1', 'nodes');
    expect(subnet.networkSecurityGroup).toBeUndefined();
  });

  test('a VNet created through the SDK keeps its nested subnets; a subnet of a missing VNet is 404', async () => {
    await clients.network.virtualNetworks.createOrUpdate(
      RG,
      'vnet2',
      { location: 'westus', addressSpace: { addressPrefixes: ['10.9.0.0/16'] }, subnets: [{ name: 's1', addressPrefix: '10.9.1.0/24' }] },
      FAST,
    );
    const vnet = await clients.network.virtualNetworks.get(RG, 'vnet2');
    expect(vnet.subnets?.map((s) => [s.name, s.addressPrefix, s.id])).toEqual([['s1', '10.9.1.0/24', `${vnet.id}/subnets/s1`]]);
    await expect(clients.network.subnets.get(RG, 'missing', 's1')).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('managed clusters', () => {
  test('createOrUpdate is a long-running operation whose poller ends with the resource Succeeded', async () => {
    sandbox.lroPolls = 2;
    const seeded = sandbox.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks1', location: 'westeurope' }));
    const read = await clients.containerService.managedClusters.get(RG, 'aks1');
    expect(read.eTag).toBe(seeded.eTag);
    read.apiServerAccessProfile = { authorizedIPRanges: ['203.0.113.0/24'] };
    const done = await clients.containerService.managedClusters.createOrUpdate(RG, 'aks1', read, { ...FAST, ifMatch: read.eTag });
    expect(done.provisioningState).toBe('Succeeded');
    expect(done.apiServerAccessProfile?.authorizedIPRanges).toEqual(['203.0.113.0/24']);
    expect(done.eTag).not.toBe(read.eTag);

    const put = sandbox.findRequests({ method: 'PUT' })[0];
    expect(put.status).toBe(200);
    expect(put.headers['if-match']).toBe(read.eTag);
    const polls = sandbox.findRequests({ path: /\/providers\/Microsoft\.ContainerService\/locations\/westeurope\/operations\// });
    expect(polls).toHaveLength(3); // two InProgress, then Succeeded
    // The wire body nests settings under properties, and the stored cluster keeps unrelated fields.
    expect(put.body).toMatchObject({ properties: { apiServerAccessProfile: { authorizedIPRanges: ['203.0.113.0/24'] } } });
    const stored = sandbox.get<ArmManagedCluster>(seeded.id)!;
    expect(stored.properties.provisioningState).toBe('Succeeded');
    expect(stored.properties.kubernetesVersion).toBe(seeded.properties.kubernetesVersion);
  });

  test('the PUT answer says Updating and names the operation; the resource says Updating until polled (or read)', async () => {
    const cluster = sandbox.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks1', location: 'eastus' }));
    const path = new URL(cluster.id, 'http://x').pathname + '?api-version=2026-01-01';
    const answer = await raw('PUT', path, JSON.stringify(cluster));
    expect(answer.status).toBe(200);
    expect(answer.json.properties.provisioningState).toBe('Updating');
    expect(answer.headers.get('etag')).toBe(answer.json.eTag);
    const status = answer.headers.get('azure-asyncoperation')!;
    expect(status.startsWith(`${sandbox.endpoint}/subscriptions/${SUB}/providers/Microsoft.ContainerService/locations/eastus/operations/`)).toBe(true);
    expect(sandbox.get<ArmManagedCluster>(cluster.id)!.properties.provisioningState).toBe('Updating');
    const statusPath = status.slice(sandbox.endpoint.length);
    expect((await raw('GET', statusPath)).json.status).toBe('InProgress');
    expect((await raw('GET', statusPath)).json.status).toBe('Succeeded');
    expect(sandbox.get<ArmManagedCluster>(cluster.id)!.properties.provisioningState).toBe('Succeeded');
  });

  test('a stale ifMatch is refused with an ARM PreconditionFailed error; ifNoneMatch * refuses an existing cluster', async () => {
    const cluster = sandbox.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks1' }));
    const read = await clients.containerService.managedClusters.get(RG, 'aks1');
    await expect(clients.containerService.managedClusters.createOrUpdate(RG, 'aks1', read, { ...FAST, ifMatch: 'stale-etag' })).rejects.toMatchObject({
      statusCode: 412,
      code: 'PreconditionFailed',
    });
    await expect(clients.containerService.managedClusters.createOrUpdate(RG, 'aks1', read, { ...FAST, ifNoneMatch: '*' })).rejects.toMatchObject({
      statusCode: 412,
    });
    expect(sandbox.get<ArmManagedCluster>(cluster.id)!.eTag).toBe(cluster.eTag);
  });

  test('a new cluster is answered 201; agent pools are read from agentPoolProfiles; delete removes it', async () => {
    const body = clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks-new', nodeSubnetId: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes` });
    const path = new URL(body.id, 'http://x').pathname + '?api-version=2026-01-01';
    expect((await raw('PUT', path, JSON.stringify(body))).status).toBe(201);
    const pools = await collect(clients.containerService.agentPools.list(RG, 'aks-new'));
    expect(pools.map((p) => [p.name, p.vnetSubnetID])).toEqual([['nodepool1', body.properties.agentPoolProfiles![0].vnetSubnetID]]);
    const pool = await clients.containerService.agentPools.get(RG, 'aks-new', 'nodepool1');
    expect(pool.id).toBe(`${body.id}/agentPools/nodepool1`);
    expect(pool.vmSize).toBe('Standard_DS1_v2');

    await clients.containerService.managedClusters.delete(RG, 'aks-new', FAST);
    expect(sandbox.get(body.id)).toBeUndefined();
    await expect(clients.containerService.managedClusters.get(RG, 'aks-new')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
  });
});

describe('faults, latency and ignored writes', () => {
  test('a 429 with Retry-After is retried by the SDK and then succeeds', async () => {
    seedNsg('nsg1');
    sandbox.failNext({ method: 'GET', pathPattern: /networkSecurityGroups\/nsg1$/, status: 429, headers: { 'Retry-After': '1' } });
    const nsg = await clients.network.networkSecurityGroups.get(RG, 'nsg1');
    expect(nsg.name).toBe('nsg1');
    expect(sandbox.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(sandbox.requests[0].injected).toBe(true);
  });

  test('an injected 503 fails a client without retries and is retried away by one with them', async () => {
    seedNsg('nsg1');
    const noRetry = sandboxClients(sandbox.endpoint, SUB, { retryOptions: { maxRetries: 0 } });
    sandbox.failNext({ pathPattern: /nsg1/, status: 503, times: 2 });
    await expect(noRetry.network.networkSecurityGroups.get(RG, 'nsg1')).rejects.toMatchObject({ statusCode: 503, code: 'ServiceUnavailable' });
    await expect(clients.network.networkSecurityGroups.get(RG, 'nsg1')).resolves.toMatchObject({ name: 'nsg1' });
    expect(sandbox.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  test('an injected 403 names the ARM action that was refused; writes refused this way change nothing', async () => {
    seedNsg('nsg1');
    sandbox.failNext({ method: 'PUT', status: 403 });
    const error = (await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'r', sshDeny, FAST).catch((e: unknown) => e)) as { statusCode: number; code: string; message: string };
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe('AuthorizationFailed');
    expect(error.message).toContain("'Microsoft.Network/networkSecurityGroups/securityRules/write'");
    expect(sandbox.get(`${nsgId('nsg1')}/securityRules/r`)).toBeUndefined();
  });

  test('latency delays answers: a client with a short deadline gives up, one without succeeds', async () => {
    seedNsg('nsg1');
    sandbox.latencyMs = 3000;
    await expect(
      clients.network.networkSecurityGroups.get(RG, 'nsg1', { abortSignal: AbortSignal.timeout(100) }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    sandbox.latencyMs = 20;
    await expect(clients.network.networkSecurityGroups.get(RG, 'nsg1')).resolves.toMatchObject({ name: 'nsg1' });
  });

  test('a stall never answers: the client gives up, the request is recorded as stalled; stop() still ends', async () => {
    seedNsg('nsg1');
    sandbox.failNext({ method: 'GET', pathPattern: /nsg1$/, fault: 'stall' });
    await expect(clients.network.networkSecurityGroups.get(RG, 'nsg1', { abortSignal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError' });
    expect(sandbox.requests[0]).toMatchObject({ injected: true, fault: 'stall', status: 0 });
    // The next request is answered as usual.
    await expect(clients.network.networkSecurityGroups.get(RG, 'nsg1')).resolves.toMatchObject({ name: 'nsg1' });
    sandbox.failNext({ method: 'GET', fault: 'stall' });
    const pending = clients.network.networkSecurityGroups.get(RG, 'nsg1').catch((e: unknown) => e);
    while (sandbox.requests.length < 3) await new Promise((r) => setTimeout(r, 5));
    await sandbox.stop(); // ends the held request too
    expect(await pending).toBeDefined();
  });

  test('a reset destroys the connection: a client without retries sees ECONNRESET, one with them recovers', async () => {
    seedNsg('nsg1');
    const noRetry = sandboxClients(sandbox.endpoint, SUB, { retryOptions: { maxRetries: 0 } });
    sandbox.failNext({ pathPattern: /nsg1$/, fault: 'reset', times: 2 });
    await expect(noRetry.network.networkSecurityGroups.get(RG, 'nsg1')).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(clients.network.networkSecurityGroups.get(RG, 'nsg1')).resolves.toMatchObject({ name: 'nsg1' });
    expect(sandbox.requests.map((r) => [r.status, r.fault])).toEqual([
      [0, 'reset'],
      [0, 'reset'],
      [200, undefined],
    ]);
  });

  test('afterApplying: the write takes effect, then its answer is replaced (a lost answer); a retry with the old condition gets 412', async () => {
    seedNsg('nsg1');
    const noRetry = sandboxClients(sandbox.endpoint, SUB, { retryOptions: { maxRetries: 0 } });
    sandbox.failNext({ method: 'PUT', pathPattern: /securityRules\/r$/, status: 503, afterApplying: true });
    const noneMatch = { ...FAST, requestOptions: { headers: { 'If-None-Match': '*' } } };
    await expect(noRetry.network.securityRules.createOrUpdate(RG, 'nsg1', 'r', sshDeny, noneMatch)).rejects.toMatchObject({ statusCode: 503 });
    expect(sandbox.get<ArmSecurityRule>(`${nsgId('nsg1')}/securityRules/r`)!.properties).toMatchObject({ access: 'Deny', priority: 200 });
    expect(sandbox.requests[0]).toMatchObject({ status: 503, injected: true, applied: true });
    await expect(noRetry.network.securityRules.createOrUpdate(RG, 'nsg1', 'r', sshDeny, noneMatch)).rejects.toMatchObject({ statusCode: 412 });

    sandbox.failNext({ method: 'PUT', pathPattern: /securityRules\/r2$/, fault: 'reset', afterApplying: true });
    await expect(noRetry.network.securityRules.createOrUpdate(RG, 'nsg1', 'r2', { ...sshDeny, priority: 210 }, FAST)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(sandbox.get(`${nsgId('nsg1')}/securityRules/r2`)).toBeDefined();
  });

  test('an operation runs on its own: throttled status polls and reads of the resource still bring it to its end', async () => {
    const cluster = sandbox.put(clusterFromFixture({ subscriptionId: SUB, resourceGroup: RG, name: 'aks1', location: 'eastus' }));
    const path = new URL(cluster.id, 'http://x').pathname + '?api-version=2026-01-01';
    const status = (await raw('PUT', path, JSON.stringify(cluster))).headers.get('azure-asyncoperation')!;
    sandbox.failNext({ method: 'GET', pathPattern: /\/operations\//, status: 429 });
    expect((await raw('GET', status.slice(sandbox.endpoint.length))).status).toBe(429);
    expect(sandbox.get<ArmManagedCluster>(cluster.id)!.properties.provisioningState).toBe('Updating');
    expect((await raw('GET', path)).json.properties.provisioningState).toBe('Succeeded');
  });

  test('failNext needs a status or a fault', () => {
    expect(() => sandbox.failNext({ method: 'GET' })).toThrow(/status or a fault/);
  });

  test('an ignored write is answered as a success but the state does not change', async () => {
    seedNsg('nsg1');
    const changes: string[] = [];
    sandbox.onChange((c) => changes.push(`${c.kind} ${c.operationName} applied=${c.applied}`));
    sandbox.ignoreWritesTo(/securityRules\/deny-ssh$/);
    await expect(clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', sshDeny, FAST)).rejects.toMatchObject({ statusCode: 404 });
    // The poller's final GET finds nothing: the write did not take.
    expect(sandbox.get(`${nsgId('nsg1')}/securityRules/deny-ssh`)).toBeUndefined();
    expect(sandbox.findRequests({ method: 'PUT' })[0]).toMatchObject({ status: 201, ignoredWrite: true });
    // Only the first matching write is dropped.
    await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'deny-ssh', sshDeny, FAST);
    expect(sandbox.get(`${nsgId('nsg1')}/securityRules/deny-ssh`)).toBeDefined();
    expect(changes).toEqual([
      'write Microsoft.Network/networkSecurityGroups/securityRules/write applied=false',
      'write Microsoft.Network/networkSecurityGroups/securityRules/write applied=true',
    ]);
  });
});

describe('direct state access', () => {
  test('put of a rule or subnet id goes into its parent; remove and list by type work on children too', async () => {
    const nsg = seedNsg('nsg1');
    const ruleId = `${nsg.id}/securityRules/direct`;
    const rule = sandbox.put<ArmSecurityRule & { id: string }>({ id: ruleId, name: 'direct', properties: { ...sshDeny } });
    expect(rule.etag).not.toBe(nsg.etag);
    expect(sandbox.get<ArmNetworkSecurityGroup>(nsg.id)!.etag).toBe(rule.etag);
    expect((await clients.network.securityRules.get(RG, 'nsg1', 'direct')).priority).toBe(200);

    sandbox.put(vnetWithSubnets({ subscriptionId: SUB, resourceGroup: RG, name: 'v', subnets: [] }));
    const subnetId = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s`;
    sandbox.put({ id: subnetId, name: 's', properties: { addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } } });
    expect(sandbox.get<ArmNetworkSecurityGroup>(nsg.id)!.properties.subnets).toEqual([{ id: subnetId }]);
    expect(sandbox.list('microsoft.network/virtualnetworks/subnets').map((s) => (s as { id: string }).id)).toEqual([subnetId]);
    expect(sandbox.list('Microsoft.Network/networkSecurityGroups')).toHaveLength(1);

    expect(sandbox.remove(subnetId)).toBe(true);
    expect(sandbox.get<ArmNetworkSecurityGroup>(nsg.id)!.properties.subnets).toBeUndefined();
    expect(sandbox.remove(ruleId)).toBe(true);
    expect(sandbox.remove(ruleId)).toBe(false);
    expect(() => sandbox.put({ id: `${nsgId('absent')}/securityRules/x`, name: 'x', properties: sshDeny })).toThrow(/parent/);
  });
});

describe('requests and errors', () => {
  test('requests are recorded with lower-cased headers, parsed bodies and statuses', async () => {
    seedNsg('nsg1');
    await clients.network.securityRules.createOrUpdate(RG, 'nsg1', 'r1', sshDeny, FAST);
    const put = sandbox.findRequests({ method: 'PUT' })[0];
    expect(put.path).toBe(`${nsgId('nsg1')}/securityRules/r1`);
    expect(put.query['api-version']).toMatch(/^\d{4}-\d{2}-\d{2}/);
    expect(put.headers.authorization).toBe('Bearer sandbox');
    expect(put.body).toMatchObject({ properties: { priority: 200 } });
    expect(sandbox.countRequests({ method: 'put' })).toBe(1);
    sandbox.resetRequests();
    expect(sandbox.countRequests()).toBe(0);
  });

  test('malformed JSON is 400, unknown routes are 404 with a clear message, no token is 401', async () => {
    seedNsg('nsg1');
    const bad = await raw('PUT', `${nsgId('nsg1')}/securityRules/r1?api-version=x`, '{not json');
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('InvalidRequestContent');
    const unknown = await raw('GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/sa1?api-version=x`);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toContain('does not serve GET');
    const anonymous = await fetch(`${sandbox.endpoint}/subscriptions?api-version=2022-12-01`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('AuthenticationFailed');
  });

  test('stop closes keep-alive connections and can be called twice', async () => {
    await clients.network.networkSecurityGroups.list(RG).next();
    await sandbox.stop();
    await sandbox.stop();
    await expect(fetch(`${sandbox.endpoint}/subscriptions`)).rejects.toThrow();
  });
});
