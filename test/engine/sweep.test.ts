// The engine end to end: real SDK clients over HTTP against the ARM sandbox seeded with the drifted
// fleet, real Azurite for state. Verdicts are checked against what was seeded, fixes by re-reading the
// sandbox and evaluating the NSG independently of NetGuard.
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import type { SecurityRuleChange } from '../../shared/controls/types';
import { AddressSet } from '../../shared/net/addressSet';
import type { ArmSandbox } from '../../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, seedDriftedFleet, type SeededCluster, type SeededFleet } from '../../testkit/fleet';
import { CONTROL_IDS, type RunReport } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import {
  clusterIn,
  engineFor,
  findingsOf,
  freshStore,
  getPath,
  isWrite,
  onlyFinding,
  sshDecisionInSandbox,
  startSandbox,
  withoutPath,
  writesTo,
} from '../helpers/sandboxEnv';

const FALLBACK_RANGES = '198.51.100.0/24';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;


async function seedSandbox(): Promise<void> {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
}

const seeded = (label: string): SeededCluster => {
  const c = fleet.clusters.find((x) => x.label === label);
  if (!c) throw new Error(`no seeded cluster ${label}`);
  return c;
};

const ruleIn = (nsgId: string, name = NETGUARD_SSH_RULE_NAME): ArmSecurityRule | undefined =>
  sandbox.get<ArmNetworkSecurityGroup>(nsgId)?.properties.securityRules?.find((r) => r.name.toLowerCase() === name.toLowerCase());

describe('a sweep in the default modes, with storage', () => {
  let report: RunReport;
  let rig: ReturnType<typeof engineFor>;
  let before: Map<string, unknown>;

  // One sweep, inspected by every test of this block (the second-sweep test comes last).
  beforeAll(async () => {
    await seedSandbox();
    rig = engineFor(sandbox, { env: { AKS_NETGUARD_AUTHORIZED_IP_RANGES: FALLBACK_RANGES }, store: freshStore(azurite.connectionString) });
    before = new Map(sandbox.list().map((r) => [(r as { id: string }).id.toLowerCase(), r]));
    report = await rig.engine.sweep([fleet.subscriptionId]);
  }, 30_000);

  afterAll(async () => {
    await sandbox?.stop();
  });

  test('every control is reported for every cluster, and nothing is an error', () => {
    expect(report.summary.resources).toBe(fleet.clusters.length);
    for (const c of fleet.clusters) {
      const controls = findingsOf(report, c.clusterId).map((f) => f.control);
      expect(new Set(controls)).toEqual(new Set(CONTROL_IDS));
    }
    expect(report.findings.filter((f) => f.status === 'error')).toEqual([]);
  });

  test('each seeded drift is found on exactly the seeded controls, compliant ones stay compliant', () => {
    for (const c of fleet.clusters) {
      for (const control of CONTROL_IDS) {
        for (const f of findingsOf(report, c.clusterId, control)) {
          if (c.exempt) expect(f.status).toBe('exempt');
          else expect([control, f.status]).toEqual([control, c.driftedControls.includes(control) ? 'drift' : 'compliant']);
        }
      }
    }
  });

  test('the compliant reference is untouched: no write reaches its cluster or its NSG', () => {
    const a = seeded('a');
    for (const f of findingsOf(report, a.clusterId)) expect([f.status, f.action]).toEqual(['compliant', 'none']);
    expect(writesTo(sandbox, a.clusterId)).toEqual([]);
    expect(writesTo(sandbox, a.nsgIds[0])).toEqual([]);
    expect(sandbox.get(a.nsgIds[0])).toEqual(before.get(a.nsgIds[0].toLowerCase()));
  });

  test('an NSG with only default rules gets NetGuard’s Deny, created with If-None-Match: * and effective on re-read', () => {
    const b = seeded('b');
    const f = onlyFinding(report, b.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ status: 'drift', action: 'remediated', targetId: b.nsgIds[0] });
    expect(f.detail).toContain('AllowVnetInBound');

    const puts = writesTo(sandbox, b.nsgIds[0]);
    expect(puts).toHaveLength(1);
    expect(puts[0].method).toBe('PUT');
    expect(puts[0].path.toLowerCase()).toBe(`${b.nsgIds[0]}/securityRules/${NETGUARD_SSH_RULE_NAME}`.toLowerCase());
    expect(puts[0].headers['if-none-match']).toBe('*');
    expect(puts[0].headers['if-match']).toBeUndefined();

    const rule = ruleIn(b.nsgIds[0])!;
    expect(rule.properties).toMatchObject({ access: 'Deny', direction: 'Inbound', protocol: 'Tcp', destinationPortRange: '22', destinationAddressPrefix: 'VirtualNetwork' });
    expect(rule.properties.sourceAddressPrefixes ?? [rule.properties.sourceAddressPrefix]).toEqual(['10.2.0.0/22']);
    expect(sshDecisionInSandbox(sandbox, b.nsgIds[0], b.nodeSubnetIds[0])).toBe('Deny');
  });

  test('a shadowed Deny is explained and repaired with If-Match on the rule’s ETag, beating the Allow', () => {
    const c = seeded('c');
    const oldRule = (before.get(c.nsgIds[0].toLowerCase()) as ArmNetworkSecurityGroup).properties.securityRules!.find((r) => r.name === NETGUARD_SSH_RULE_NAME)!;
    expect(sshDecisionInSandbox(sandbox, c.nsgIds[0], c.nodeSubnetIds[0], ['10.3.0.0/22'])).toBe('Deny');
    const f = onlyFinding(report, c.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(f.detail).toMatch(/allow-ssh-from-vnet/);
    expect(f.detail).toMatch(/shadowed/);

    const puts = writesTo(sandbox, c.nsgIds[0]);
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['if-match']).toBe(oldRule.etag);
    expect(puts[0].headers['if-none-match']).toBeUndefined();
    expect(ruleIn(c.nsgIds[0])!.properties.priority).toBeLessThan(300);
    // The operator's own Allow is left exactly as it was.
    expect(ruleIn(c.nsgIds[0], 'allow-ssh-from-vnet')!.properties).toEqual(
      (before.get(c.nsgIds[0].toLowerCase()) as ArmNetworkSecurityGroup).properties.securityRules!.find((r) => r.name === 'allow-ssh-from-vnet')!.properties,
    );
  });

  test('the AKS-managed VNet cluster: the NSG in the node resource group is fixed; advisory egress is reported', () => {
    const f = seeded('f');
    expect(f.nsgIds[0]).toMatch(/resourceGroups\/MC_/);
    expect(onlyFinding(report, f.clusterId, 'node-ssh-deny')).toMatchObject({ targetId: f.nsgIds[0], status: 'drift', action: 'remediated' });
    expect(sshDecisionInSandbox(sandbox, f.nsgIds[0], f.nodeSubnetIds[0])).toBe('Deny');
    expect(onlyFinding(report, f.clusterId, 'egress-lockdown')).toMatchObject({ status: 'drift', action: 'reported' });
    expect(writesTo(sandbox, f.clusterId)).toEqual([]);
  });

  test('a bare node subnet is reported with the subnet as target; nothing is written for it', () => {
    const g = seeded('g');
    const f = onlyFinding(report, g.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ targetId: g.nodeSubnetIds[0], status: 'drift', action: 'reported' });
    expect(f.detail).toMatch(/No NSG/);
    expect(writesTo(sandbox, g.nodeSubnetIds[0].replace(/\/subnets\/.*$/, ''))).toEqual([]);
  });

  test('an exempt cluster: every control exempt and skipped, its drifted NSG and cluster never written', () => {
    const h = seeded('h');
    const fs = findingsOf(report, h.clusterId);
    expect(fs).toHaveLength(CONTROL_IDS.length);
    for (const f of fs) expect([f.status, f.action]).toEqual(['exempt', 'skipped']);
    expect(writesTo(sandbox, h.clusterId)).toEqual([]);
    expect(writesTo(sandbox, h.nsgIds[0])).toEqual([]);
    expect(sshDecisionInSandbox(sandbox, h.nsgIds[0], h.nodeSubnetIds[0])).toBe('Allow');
  });

  test('an Allow at 100 waits for a person, with a stored plan that narrows exactly the AKS subnet out of it', async () => {
    const i = seeded('i');
    const f = onlyFinding(report, i.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ status: 'drift', action: 'approval-requested', targetId: i.nsgIds[0] });
    expect(writesTo(sandbox, i.nsgIds[0])).toEqual([]);

    const approvals = (await rig.store!.listApprovals('pending')).filter((a) => a.targetId.toLowerCase() === i.nsgIds[0].toLowerCase());
    expect(approvals).toHaveLength(1);
    const change = approvals[0].change as SecurityRuleChange;
    expect(change).toMatchObject({ kind: 'security-rule', ruleName: 'allow-ssh-jumphosts', needsPerson: true });
    const narrowed = AddressSet.fromPrefixes(change.after.sourceAddressPrefixes ?? [change.after.sourceAddressPrefix!]);
    const aks = AddressSet.fromPrefixes(['10.9.0.0/22']);
    expect(narrowed.overlaps(aks)).toBe(false);
    expect(narrowed.union(aks).equals(AddressSet.fromPrefixes(['10.0.0.0/8']))).toBe(true);
    expect(change.after).toMatchObject({ access: 'Allow', priority: 100, destinationPortRange: '22' });
  });

  test('approve-mode cluster controls request approval and write nothing', async () => {
    const d = seeded('d');
    const e = seeded('e');
    expect(onlyFinding(report, d.clusterId, 'api-authorized-ranges')).toMatchObject({ status: 'drift', action: 'approval-requested' });
    expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'drift', action: 'approval-requested' });
    expect(writesTo(sandbox, d.clusterId)).toEqual([]);
    expect(writesTo(sandbox, e.clusterId)).toEqual([]);
    const pending = await rig.store!.listApprovals('pending');
    const ranges = pending.find((a) => a.targetId.toLowerCase() === d.clusterId.toLowerCase());
    expect(ranges?.change).toMatchObject({ kind: 'cluster-property', after: [FALLBACK_RANGES] });
  });

  test('the summary counts equal a recount of the findings', () => {
    const count = (p: (f: RunReport['findings'][number]) => boolean) => report.findings.filter(p).length;
    expect(report.summary).toEqual({
      resources: fleet.clusters.length,
      drift: count((f) => f.status === 'drift'),
      remediated: count((f) => f.action === 'remediated'),
      approvalRequested: count((f) => f.action === 'approval-requested'),
      exempt: count((f) => f.status === 'exempt'),
      errors: count((f) => f.status === 'error'),
    });
    expect(report.summary.remediated).toBe(3); // b, c, f
  });

  test('a second sweep writes nothing and asks for no second approval', async () => {
    const pendingBefore = (await rig.store!.listApprovals('pending')).length;
    expect(pendingBefore).toBe(3); // d, e, i
    sandbox.resetRequests();
    const second = await rig.engine.sweep([fleet.subscriptionId]);
    expect(sandbox.findRequests(isWrite)).toEqual([]);
    expect(second.summary.remediated).toBe(0);
    expect((await rig.store!.listApprovals()).length).toBe(pendingBefore);
    for (const label of ['b', 'c', 'f']) {
      expect(onlyFinding(second, seeded(label).clusterId, 'node-ssh-deny')).toMatchObject({ status: 'compliant', action: 'none' });
    }
    for (const label of ['d', 'e', 'i']) {
      const pending = findingsOf(second, seeded(label).clusterId).filter((f) => f.status === 'drift');
      expect(pending.map((f) => f.action)).toContain('approval-requested');
    }
  });

  test('every write is audited with before and after', async () => {
    const audit = await rig.store!.listAudit();
    const remediated = audit.filter((a) => a.event === 'remediated');
    expect(remediated.map((a) => a.targetId.toLowerCase()).sort()).toEqual(['b', 'c', 'f'].map((l) => seeded(l).nsgIds[0].toLowerCase()).sort());
    for (const a of remediated) expect(a.after).toMatchObject({ access: 'Deny', destinationPortRange: '22' });
  });
});

describe('modes', () => {
  beforeEach(seedSandbox);
  afterEach(async () => {
    await sandbox?.stop();
  });

  test('cliMode report writes nothing and reports what it would do', async () => {
    const rig = engineFor(sandbox, { env: { AKS_NETGUARD_AUTHORIZED_IP_RANGES: FALLBACK_RANGES }, store: freshStore(azurite.connectionString) });
    const report = await rig.engine.sweep([fleet.subscriptionId], { cliMode: 'report' });
    expect(sandbox.countRequests((r) => r.method === 'PUT' || r.method === 'DELETE')).toBe(0);
    expect(report.summary.remediated).toBe(0);
    expect(report.summary.approvalRequested).toBe(0);
    expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'reported' });
    expect(onlyFinding(report, seeded('b').clusterId, 'node-ssh-deny').detail).toMatch(/would/i);
    expect(await rig.store!.listApprovals()).toEqual([]);
  });

  test('without storage, approve acts as report and the detail says so', async () => {
    const rig = engineFor(sandbox, { env: { AKS_NETGUARD_AUTHORIZED_IP_RANGES: FALLBACK_RANGES } });
    const report = await rig.engine.sweep([fleet.subscriptionId]);
    for (const [label, control] of [['d', 'api-authorized-ranges'], ['e', 'http-application-routing'], ['i', 'node-ssh-deny']] as const) {
      const f = onlyFinding(report, seeded(label).clusterId, control);
      expect(f).toMatchObject({ status: 'drift', action: 'reported' });
      expect(f.detail).toMatch(/without storage approve acts as report/i);
    }
    expect(report.summary.approvalRequested).toBe(0);
    expect(rig.warnings.join('\n')).toMatch(/approve acts as report/);
    expect(writesTo(sandbox, seeded('d').clusterId)).toEqual([]);
    expect(writesTo(sandbox, seeded('i').nsgIds[0])).toEqual([]);
  });

  test('auto for a cluster control: the PUT carries If-Match = the ETag read and the resource as read with one property changed', async () => {
    const e = seeded('e');
    const asRead = clusterIn(sandbox, e.clusterId);
    const rig = engineFor(sandbox, { env: { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' } });
    const report = await rig.engine.sweep([fleet.subscriptionId]);
    expect(onlyFinding(report, e.clusterId, 'http-application-routing')).toMatchObject({ status: 'drift', action: 'remediated' });

    const puts = writesTo(sandbox, e.clusterId);
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['if-match']).toBe(asRead.eTag);
    const key = Object.keys(asRead.properties.addonProfiles!).find((k) => k.toLowerCase() === 'httpapplicationrouting')!;
    const changed = ['properties', 'addonProfiles', key, 'enabled'];
    expect(getPath(asRead, changed)).toBe(true);
    expect(getPath(puts[0].body, changed)).toBe(false);
    expect(withoutPath(puts[0].body, changed)).toEqual(withoutPath(asRead, changed));

    const now = clusterIn(sandbox, e.clusterId);
    expect(getPath(now, changed)).toBe(false);
    expect(now.properties.provisioningState).toBe('Succeeded');
    // Everything else is as it was (ETag and provisioning state are the service's).
    const strip = (c: ArmManagedCluster) => withoutPath(withoutPath(withoutPath(c, changed), ['eTag']), ['properties', 'provisioningState']);
    expect(strip(now)).toEqual(strip(asRead));
  });
});
