// The engine with real state (Azurite): the write cap, baselines, approvals executed later, and a
// topology where two clusters share one NSG. Through the real SDK clients against the ARM sandbox.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import type { ArmSandbox } from '../../testkit/armServer';
import {
  clusterFromFixture,
  NETGUARD_SSH_RULE_NAME,
  nsgFromFixture,
  securityRule,
  seedDriftedFleet,
  vnetWithSubnets,
  type SeededCluster,
  type SeededFleet,
} from '../../testkit/fleet';
import { approvalIdFor } from '../../shared/store/types';
import { useAzurite } from '../helpers/azurite';
import { clusterIn, engineFor, findingsOf, freshStore, onlyFinding, sshDecisionInSandbox, startSandbox, writesTo } from '../helpers/sandboxEnv';

const FALLBACK = '198.51.100.0/24';
const SECOND_SUB = '22222222-3333-4444-5555-666666666666';

const azurite = useAzurite();


const pick = (fleet: SeededFleet, label: string): SeededCluster => fleet.clusters.find((c) => c.label === label)!;

describe('with a fresh sandbox per test', () => {
  let sandbox: ArmSandbox;
  beforeEach(async () => {
    sandbox = await startSandbox();
  });
  afterEach(async () => {
    await sandbox.stop();
  });

  test('the write cap: with AKS_NETGUARD_MAX_WRITES_PER_RUN=1, one NSG is fixed and the rest wait for approval', async () => {
    const fleet = seedDriftedFleet(sandbox);
    const store = freshStore(azurite.connectionString);
    const { engine } = engineFor(sandbox, { env: { AKS_NETGUARD_MAX_WRITES_PER_RUN: '1' }, store });
    const report = await engine.sweep([fleet.subscriptionId]);
    const ssh = ['b', 'c', 'f'].map((l) => onlyFinding(report, pick(fleet, l).clusterId, 'node-ssh-deny'));
    expect(ssh.filter((f) => f.action === 'remediated')).toHaveLength(1);
    const waiting = ssh.filter((f) => f.action === 'approval-requested');
    expect(waiting).toHaveLength(2);
    for (const f of waiting) expect(f.detail).toContain('AKS_NETGUARD_MAX_WRITES_PER_RUN');
    expect(sandbox.findRequests((r) => r.method === 'PUT').length).toBe(1);
    const pending = await store.listApprovals('pending');
    for (const f of waiting) expect(pending.some((a) => a.targetId.toLowerCase() === f.targetId.toLowerCase())).toBe(true);
  });

  test('two clusters sharing one NSG: one rule whose sources are the union, both findings point at it, one write', async () => {
    const sub = '33333333-4444-5555-6666-777777777777';
    const rg = 'rg-shared';
    const nsg = sandbox.put(nsgFromFixture({ subscriptionId: sub, resourceGroup: rg, name: 'shared-nodes-nsg', securityRules: [] }));
    const vnet = sandbox.put(
      vnetWithSubnets({
        subscriptionId: sub,
        resourceGroup: rg,
        name: 'shared-vnet',
        addressPrefixes: ['10.50.0.0/16'],
        subnets: [
          { name: 'nodes-one', addressPrefix: '10.50.0.0/24', nsgId: nsg.id },
          { name: 'nodes-two', addressPrefix: '10.50.1.0/24', nsgId: nsg.id },
        ],
      }),
    );
    const one = sandbox.put(clusterFromFixture({ subscriptionId: sub, resourceGroup: rg, name: 'aks-one', nodeSubnetId: `${vnet.id}/subnets/nodes-one` }));
    const two = sandbox.put(clusterFromFixture({ subscriptionId: sub, resourceGroup: rg, name: 'aks-two', nodeSubnetId: `${vnet.id}/subnets/nodes-two` }));
    const { engine } = engineFor(sandbox, { store: freshStore(azurite.connectionString) });
    const report = await engine.sweep([sub]);

    const findings = [one, two].map((c) => onlyFinding(report, c.id, 'node-ssh-deny'));
    for (const f of findings) expect(f).toMatchObject({ targetId: nsg.id, status: 'drift', action: 'remediated' });
    expect(writesTo(sandbox, nsg.id)).toHaveLength(1);
    const rules = sandbox.get<ArmNetworkSecurityGroup>(nsg.id)!.properties.securityRules!;
    expect(rules.map((r) => r.name)).toEqual([NETGUARD_SSH_RULE_NAME]);
    expect([...(rules[0].properties.sourceAddressPrefixes ?? [])].sort()).toEqual(['10.50.0.0/24', '10.50.1.0/24']);
    // Independently: SSH from either cluster's subnet to either cluster's nodes is denied.
    for (const node of ['nodes-one', 'nodes-two']) {
      expect(sshDecisionInSandbox(sandbox, nsg.id, `${vnet.id}/subnets/${node}`, ['10.50.0.0/24', '10.50.1.0/24'])).toBe('Deny');
    }
  });

  test('baseline: ranges recorded while compliant are what NetGuard restores, not the fallback', async () => {
    const fleet = seedDriftedFleet(sandbox);
    const a = pick(fleet, 'a');
    const store = freshStore(azurite.connectionString);
    const env = { AKS_NETGUARD_AUTHORIZED_IP_RANGES: FALLBACK, AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: 'auto' };
    const recorded = clusterIn(sandbox, a.clusterId).properties.apiServerAccessProfile!.authorizedIPRanges!;
    expect(recorded).not.toContain(FALLBACK);

    await engineFor(sandbox, { env, store }).engine.reconcile(a.clusterId);
    expect(await store.getBaseline(a.clusterId)).toEqual(recorded);

    // Someone clears the ranges (a new ETag, as ARM gives).
    const { eTag: _old, ...cluster } = clusterIn(sandbox, a.clusterId);
    cluster.properties.apiServerAccessProfile = { ...cluster.properties.apiServerAccessProfile, authorizedIPRanges: [] };
    sandbox.put(cluster);
    sandbox.resetRequests();

    const report = await engineFor(sandbox, { env, store }).engine.reconcile(a.clusterId);
    expect(onlyFinding(report, a.clusterId, 'api-authorized-ranges')).toMatchObject({ status: 'drift', action: 'remediated' });
    const puts = writesTo(sandbox, a.clusterId);
    expect(puts).toHaveLength(1);
    expect((puts[0].body as ArmManagedCluster).properties.apiServerAccessProfile!.authorizedIPRanges).toEqual(recorded);
    expect(clusterIn(sandbox, a.clusterId).properties.apiServerAccessProfile!.authorizedIPRanges).toEqual(recorded);
  });
});

describe('executeApproval', () => {
  let sandbox: ArmSandbox;
  let fleet: SeededFleet;
  let other: SeededFleet;
  let store: ReturnType<typeof freshStore>;
  let rig: ReturnType<typeof engineFor>;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fleet = seedDriftedFleet(sandbox);
    other = seedDriftedFleet(sandbox, { subscriptionId: SECOND_SUB });
    store = freshStore(azurite.connectionString);
    rig = engineFor(sandbox, { env: { AKS_NETGUARD_AUTHORIZED_IP_RANGES: FALLBACK }, store });
    await rig.engine.sweep([fleet.subscriptionId, SECOND_SUB]);
  }, 30_000);

  afterAll(async () => {
    await sandbox?.stop();
  });

  const approvalFor = async (control: Parameters<typeof approvalIdFor>[0], targetId: string) => {
    const approval = await store.getApproval(approvalIdFor(control, targetId));
    if (!approval) throw new Error(`no approval for ${control} on ${targetId}`);
    expect(approval.state).toBe('pending');
    return approval;
  };

  test('approve applies the cluster change with If-Match and verifies it', async () => {
    const d = pick(fleet, 'd');
    const approval = await approvalFor('api-authorized-ranges', d.clusterId);
    const etagBefore = clusterIn(sandbox, d.clusterId).eTag;
    sandbox.resetRequests();
    const result = await rig.engine.executeApproval(approval, 'alice@contoso.example');
    expect(result.result).toBe('applied');
    const puts = writesTo(sandbox, d.clusterId);
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['if-match']).toBe(etagBefore);
    expect(clusterIn(sandbox, d.clusterId).properties.apiServerAccessProfile!.authorizedIPRanges).toEqual([FALLBACK]);
    const audit = await store.listAudit();
    expect(audit.some((a) => a.event === 'remediated' && a.actor === 'alice@contoso.example' && a.targetId.toLowerCase() === d.clusterId.toLowerCase())).toBe(true);
  });

  test('a drift fixed by someone else before the approval: gone, nothing written', async () => {
    const e = pick(fleet, 'e');
    const approval = await approvalFor('http-application-routing', e.clusterId);
    const { eTag: _old, ...cluster } = clusterIn(sandbox, e.clusterId);
    for (const p of Object.values(cluster.properties.addonProfiles ?? {})) p.enabled = false;
    sandbox.put(cluster);
    sandbox.resetRequests();
    const result = await rig.engine.executeApproval(approval, 'alice@contoso.example');
    expect(result.result).toBe('gone');
    expect(writesTo(sandbox)).toEqual([]);
  });

  test('a drift that changed since the request: changed, nothing written', async () => {
    const i = pick(other, 'i');
    const approval = await approvalFor('node-ssh-deny', i.nsgIds[0]);
    const allowId = `${i.nsgIds[0]}/securityRules/allow-ssh-jumphosts`;
    const allow = sandbox.get<ArmSecurityRule>(allowId)!;
    sandbox.put({ ...securityRule('allow-ssh-jumphosts', { ...allow.properties, sourceAddressPrefix: '10.8.0.0/13' }), id: allowId });
    sandbox.resetRequests();
    const result = await rig.engine.executeApproval(approval, 'alice@contoso.example');
    expect(result.result).toBe('changed');
    expect(writesTo(sandbox)).toEqual([]);
  });

  test('the narrowing approval narrows the Allow and then creates the Deny in the same call', async () => {
    const i = pick(fleet, 'i');
    const approval = await approvalFor('node-ssh-deny', i.nsgIds[0]);
    const allowBefore = sandbox.get<{ etag: string }>(`${i.nsgIds[0]}/securityRules/allow-ssh-jumphosts`)!;
    sandbox.resetRequests();
    const result = await rig.engine.executeApproval(approval, 'bob@contoso.example');
    expect(result.result).toBe('applied');
    const puts = writesTo(sandbox, i.nsgIds[0]);
    expect(puts.map((r) => r.path.split('/').pop())).toEqual(['allow-ssh-jumphosts', NETGUARD_SSH_RULE_NAME]);
    expect(puts[0].headers['if-match']).toBe(allowBefore.etag);
    expect(puts[1].headers['if-none-match']).toBe('*');
    expect(sshDecisionInSandbox(sandbox, i.nsgIds[0], i.nodeSubnetIds[0])).toBe('Deny');
    // Jump hosts outside the AKS subnet keep their SSH access to the nodes.
    expect(sshDecisionInSandbox(sandbox, i.nsgIds[0], i.nodeSubnetIds[0], ['10.200.0.0/24'])).toBe('Allow');
    const after = await rig.engine.sweep([fleet.subscriptionId]);
    expect(findingsOf(after, i.clusterId, 'node-ssh-deny')[0]).toMatchObject({ status: 'compliant' });
  });
});
