// The fixture-based builders and the drifted demo fleet, read back through the real SDK clients.
import { ArmSandbox } from '../../testkit/armServer';
import {
  clusterFromFixture,
  NETGUARD_EXEMPT_TAG,
  NETGUARD_SSH_RULE_NAME,
  nsgFromFixture,
  seedDriftedFleet,
  vnetWithSubnets,
  type SeededCluster,
  type SeededFleet,
} from '../../testkit/fleet';
import { sandboxClients } from '../../testkit/sdkClients';
import { PUBLISHED_SAMPLES } from '../../testkit/samples';
import { loadCluster } from '../net/azureFixtures';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmSubnet, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import path from 'node:path';
import fs from 'node:fs';

const SUB = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

describe('builders', () => {
  test('the samples the kit carries are still byte-for-byte copies of the published fixtures', () => {
    const fixtures = path.join(__dirname, '..', 'fixtures', 'azure');
    const kit = path.join(__dirname, '..', '..', 'testkit', 'published');
    // Every JSON file in the kit's folder is one the kit imports, and each equals its fixture.
    const carried: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(dir, e.name));
        else if (e.name.endsWith('.json')) carried.push(path.relative(kit, path.join(dir, e.name)).split(path.sep).join('/'));
      }
    };
    walk(kit);
    expect(carried.sort()).toEqual([...PUBLISHED_SAMPLES].sort());
    for (const name of PUBLISHED_SAMPLES) {
      expect({ name, same: fs.readFileSync(path.join(kit, name)).equals(fs.readFileSync(path.join(fixtures, name))) }).toEqual({ name, same: true });
    }
  });

  test('clusterFromFixture keeps the published values and rebases every id', () => {
    const published = loadCluster();
    const nodeSubnetId = `/subscriptions/${SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes`;
    const cluster = clusterFromFixture({ subscriptionId: SUB, resourceGroup: 'rg9', name: 'aks9', location: 'northeurope', nodeSubnetId, tags: { team: 'x' } });
    expect(cluster.id).toBe(`/subscriptions/${SUB}/resourceGroups/rg9/providers/Microsoft.ContainerService/managedClusters/aks9`);
    expect(cluster.properties.kubernetesVersion).toBe(published.properties.kubernetesVersion);
    expect(cluster.properties.agentPoolProfiles![0]).toMatchObject({ name: 'nodepool1', vmSize: 'Standard_DS1_v2', vnetSubnetID: nodeSubnetId });
    expect(cluster.properties.networkProfile!.networkPlugin).toBe('azure');
    expect(cluster.properties.nodeResourceGroup).toBe('MC_rg9_aks9_northeurope');
    expect(cluster.tags).toEqual({ ...published.tags, team: 'x' });
    expect(JSON.stringify(cluster)).not.toContain('00000000-0000-0000-0000-000000000000');
  });

  test('nsgFromFixture and vnetWithSubnets make resources the sandbox serves with consistent back-references', async () => {
    const sandbox = await ArmSandbox.start();
    try {
      const nsg = sandbox.put(nsgFromFixture({ subscriptionId: SUB, resourceGroup: 'net', name: 'n1' }));
      expect(nsg.properties.securityRules!.map((r) => [r.name, r.id])).toEqual([['rule1', `${nsg.id}/securityRules/rule1`]]);
      expect(nsg.properties.defaultSecurityRules).toHaveLength(6);
      sandbox.put(vnetWithSubnets({ subscriptionId: SUB, resourceGroup: 'net', name: 'v', addressPrefixes: ['10.5.0.0/16'], subnets: [{ name: 'a', addressPrefix: '10.5.0.0/24', nsgId: nsg.id }] }));
      const clients = sandboxClients(sandbox.endpoint, SUB);
      const read = await clients.network.networkSecurityGroups.get('net', 'n1');
      expect(read.subnets?.map((s) => s.id)).toEqual([`/subscriptions/${SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/a`]);
      const vnet = await clients.network.virtualNetworks.get('net', 'v');
      expect(vnet.addressSpace?.addressPrefixes).toEqual(['10.5.0.0/16']);
    } finally {
      await sandbox.stop();
    }
  });
});

describe('seedDriftedFleet', () => {
  let sandbox: ArmSandbox;
  let fleet: SeededFleet;
  const byLabel = (label: string): SeededCluster => fleet.clusters.find((c) => c.label === label)!;
  const cluster = (label: string) => sandbox.get<ArmManagedCluster>(byLabel(label).clusterId)!;
  const nsgOf = (label: string) => sandbox.get<ArmNetworkSecurityGroup>(byLabel(label).nsgIds[0])!;
  const sshRules = (nsg: ArmNetworkSecurityGroup): ArmSecurityRule[] =>
    (nsg.properties.securityRules ?? []).filter((r) => r.properties.destinationPortRange === '22' && r.properties.direction === 'Inbound');

  beforeAll(async () => {
    sandbox = await ArmSandbox.start();
    fleet = seedDriftedFleet(sandbox);
  });
  afterAll(async () => {
    await sandbox.stop();
  });

  test('seeds one cluster per kind of drift, all readable through the SDK', async () => {
    expect(fleet.clusters.map((c) => c.label)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    const clients = sandboxClients(sandbox.endpoint, fleet.subscriptionId);
    const listed: string[] = [];
    for await (const c of clients.containerService.managedClusters.list()) listed.push(c.id!);
    expect(listed.sort()).toEqual(fleet.clusters.map((c) => c.clusterId).sort());
    for (const c of fleet.clusters) {
      for (const id of [...c.nsgIds, ...c.nodeSubnetIds]) expect(sandbox.get(id)).toBeDefined();
      expect(c.problem.length).toBeGreaterThan(20);
    }
  });

  test('every NSG lists the node subnets that use it', () => {
    for (const c of fleet.clusters.filter((x) => x.nsgIds.length > 0)) {
      expect(nsgOf(c.label).properties.subnets?.map((s) => s.id)).toEqual(c.nodeSubnetIds);
    }
  });

  test('(a) is hardened: NetGuard deny rule over node and pod subnets, ranges, calico, UDR, Istio', () => {
    const a = cluster('a');
    const pool = a.properties.agentPoolProfiles![0];
    const prefixes = [pool.vnetSubnetID!, pool.podSubnetID!].map((id) => sandbox.get<ArmSubnet>(id)!.properties.addressPrefix);
    const deny = nsgOf('a').properties.securityRules!.find((r) => r.name === NETGUARD_SSH_RULE_NAME)!;
    expect(deny.properties).toMatchObject({ access: 'Deny', protocol: 'Tcp', direction: 'Inbound', destinationPortRange: '22', sourceAddressPrefixes: prefixes });
    expect(a.properties.apiServerAccessProfile?.authorizedIPRanges?.length).toBeGreaterThan(0);
    expect(a.properties.networkProfile).toMatchObject({ networkPolicy: 'calico', outboundType: 'userDefinedRouting' });
    expect(a.properties.serviceMeshProfile?.mode).toBe('Istio');
    expect(byLabel('a').driftedControls).toEqual([]);
  });

  test('(b) default rules only; (c) deny shadowed by a better-priority Allow; (i) Allow 22 at priority 100', () => {
    expect(nsgOf('b').properties.securityRules).toEqual([]);
    const c = sshRules(nsgOf('c'));
    const allow = c.find((r) => r.properties.access === 'Allow')!;
    const deny = c.find((r) => r.name === NETGUARD_SSH_RULE_NAME)!;
    expect(allow.properties.priority).toBeLessThan(deny.properties.priority);
    const i = sshRules(nsgOf('i'));
    expect(i.map((r) => [r.properties.access, r.properties.priority])).toEqual([['Allow', 100]]);
    expect(byLabel('i').needsPerson).toBe(true);
  });

  test('(d) ranges cleared; (e) httpApplicationRouting on; (h) exempt', () => {
    expect(cluster('d').properties.apiServerAccessProfile?.authorizedIPRanges).toEqual([]);
    expect(cluster('e').properties.addonProfiles?.httpApplicationRouting?.enabled).toBe(true);
    expect(cluster('h').tags?.[NETGUARD_EXEMPT_TAG]).toBe('*');
    expect(byLabel('h').exempt).toBe('*');
  });

  test('(f) sits on the AKS-managed VNet in its node resource group; (g) has a node subnet without an NSG', () => {
    const f = cluster('f');
    expect(f.properties.agentPoolProfiles!.every((p) => !p.vnetSubnetID)).toBe(true);
    const vnets = sandbox.list<ArmVirtualNetwork>('Microsoft.Network/virtualNetworks').filter((v) => v.id.toLowerCase().includes(`/resourcegroups/${f.properties.nodeResourceGroup!.toLowerCase()}/`));
    expect(vnets.flatMap((v) => v.properties.subnets!.map((s) => s.id))).toEqual(byLabel('f').nodeSubnetIds);
    const g = byLabel('g');
    expect(g.nsgIds).toEqual([]);
    expect(sandbox.get<ArmSubnet>(g.nodeSubnetIds[0])!.properties.networkSecurityGroup).toBeUndefined();
    expect(cluster('g').properties.agentPoolProfiles![0].vnetSubnetID).toBe(g.nodeSubnetIds[0]);
  });
});
