import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import type { ClusterPropertyChange, SecurityRuleChange } from '../../shared/controls/types';
import { StoreError, TableStateStore, storeFromEnvironment } from '../../shared/store/tables';
import { approvalIdFor, type ApprovalRecord, type AuditEntry } from '../../shared/store/types';
import type { Finding } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';

const fixture = (rel: string) => JSON.parse(readFileSync(join(__dirname, '../fixtures/azure', rel), 'utf8'));
const clusterBody = fixture('arm-aks-2026-01-01/ManagedClustersGet.json').responses['200'].body;
const nsgBody = fixture('arm-network-2026-01-01/NetworkSecurityGroupGet.json').responses['200'].body;

// Each test works on its own cluster/NSG names (derived from the fixtures) so tests don't share rows.
const clusterNamed = (name: string): string => (clusterBody.id as string).replace(/clustername1$/, name);
const nsgNamed = (name: string): string => (nsgBody.id as string).replace(/testnsg$/, name);

const PREFIX = 'tablestest';
const azurite = useAzurite();
let store: TableStateStore;

beforeAll(() => {
  store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: PREFIX });
});

const rawTable = (name: string) => TableClient.fromConnectionString(azurite.connectionString, name, { allowInsecureConnection: true });
async function rawRows(name: string) {
  const rows = [];
  for await (const row of rawTable(name).listEntities()) rows.push(row);
  return rows;
}

function ruleChange(nsgId: string): SecurityRuleChange {
  const rule = nsgBody.properties.securityRules[0].properties;
  return {
    kind: 'security-rule',
    nsgId,
    ruleName: 'aks-netguard-deny-node-ssh',
    after: { ...rule, access: 'Deny', direction: 'Inbound', destinationPortRange: '22', priority: 110 },
    needsPerson: false,
    summary: 'Add a Deny for TCP/22 from the AKS subnets.',
  };
}

function rangesChange(clusterId: string): ClusterPropertyChange {
  return {
    kind: 'cluster-property',
    clusterId,
    path: ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'],
    before: [],
    after: ['203.0.113.0/24'],
    ifMatch: clusterBody.eTag,
    needsPerson: true,
    summary: 'Restore the authorized IP ranges.',
  };
}

function approvalInput(clusterId: string, requestedAt: Date, ttlHours = 24): Omit<ApprovalRecord, 'id' | 'state' | 'etag'> {
  return {
    control: 'api-authorized-ranges',
    clusterId,
    targetId: clusterId,
    detail: 'The API server accepts every address.',
    change: rangesChange(clusterId),
    reason: 'mode approve',
    requestedAt: requestedAt.toISOString(),
    expiresAt: new Date(requestedAt.getTime() + ttlHours * 3_600_000).toISOString(),
  };
}

describe('baselines', () => {
  it('round-trips the last known-good ranges, replaced by the next put, found under any case of the id', async () => {
    const id = clusterNamed('baseline-cluster');
    expect(await store.getBaseline(id)).toBeUndefined();

    await store.putBaseline(id, ['203.0.113.0/24', '198.51.100.7/32'], new Date('2026-03-01T10:00:00Z'));
    expect(await store.getBaseline(id)).toEqual(['203.0.113.0/24', '198.51.100.7/32']);

    await store.putBaseline(id.toUpperCase(), ['192.0.2.0/24'], new Date('2026-03-02T10:00:00Z'));
    expect(await store.getBaseline(id.toLowerCase())).toEqual(['192.0.2.0/24']);
    expect(await store.getBaseline(clusterNamed('other-cluster'))).toBeUndefined();
  });
});

describe('findings', () => {
  const finding = (clusterId: string, targetId: string, status: Finding['status'], detail: string): Finding => ({
    control: 'node-ssh-deny',
    resourceId: clusterId,
    targetId,
    status,
    action: status === 'drift' ? 'reported' : 'none',
    detail,
  });

  it('keeps the latest finding per key and remembers when the drift began while it lasts', async () => {
    const cluster = clusterNamed('drift-cluster');
    const nsg = nsgNamed('drift-nsg');
    const t = (h: number) => new Date(Date.UTC(2026, 2, 1, h));

    expect(await store.recordFinding(finding(cluster, nsg, 'drift', 'first'), t(1))).toBeUndefined();
    const second = await store.recordFinding(finding(cluster, nsg, 'drift', 'second'), t(2));
    expect(second).toMatchObject({ status: 'drift', detail: 'first', at: t(1).toISOString(), driftSince: t(1).toISOString() });

    let mine = (await store.listFindings()).filter((f) => f.targetId.toLowerCase() === nsg.toLowerCase());
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ detail: 'second', at: t(2).toISOString(), driftSince: t(1).toISOString() });

    // Fixed: the drift clock stops; a new drift starts a new one.
    await store.recordFinding(finding(cluster, nsg, 'compliant', 'fixed'), t(3));
    mine = (await store.listFindings()).filter((f) => f.targetId.toLowerCase() === nsg.toLowerCase());
    expect(mine[0].status).toBe('compliant');
    expect(mine[0].driftSince).toBeUndefined();

    const beforeNewDrift = await store.recordFinding(finding(cluster, nsg, 'drift', 'again'), t(4));
    expect(beforeNewDrift).toMatchObject({ status: 'compliant', detail: 'fixed' });
    mine = (await store.listFindings()).filter((f) => f.targetId.toLowerCase() === nsg.toLowerCase());
    expect(mine).toHaveLength(1);
    expect(mine[0].driftSince).toBe(t(4).toISOString());
  });

  it('keeps one finding per cluster when two clusters share an NSG', async () => {
    const nsg = nsgNamed('shared-nsg');
    const at = new Date('2026-03-05T00:00:00Z');
    await store.recordFinding(finding(clusterNamed('share-a'), nsg, 'drift', 'a'), at);
    await store.recordFinding(finding(clusterNamed('share-b'), nsg, 'compliant', 'b'), at);
    const mine = (await store.listFindings()).filter((f) => f.targetId === nsg);
    expect(mine.map((f) => f.detail).sort()).toEqual(['a', 'b']);
  });

  it('maps ids with odd characters and mixed case to one row, with keys the service accepts', async () => {
    const odd = `${nsgNamed('Odd#Name?x=1')}\\back slash/%25/'quote'/ünï`;
    const cluster = clusterNamed('Odd-Cluster');
    await store.recordFinding(finding(cluster, odd, 'drift', 'upper'), new Date('2026-03-06T00:00:00Z'));
    const previous = await store.recordFinding(
      finding(cluster.toLowerCase(), odd.toUpperCase(), 'drift', 'lower'),
      new Date('2026-03-06T01:00:00Z'),
    );
    expect(previous).toMatchObject({ detail: 'upper', targetId: odd });

    const mine = (await store.listFindings()).filter((f) => f.targetId.toLowerCase() === odd.toLowerCase());
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ detail: 'lower', driftSince: '2026-03-06T00:00:00.000Z' });

    for (const row of await rawRows(store.tableName('findings'))) {
      // Control characters are what Azure Tables refuses in keys: the check is for exactly those.
      // eslint-disable-next-line no-control-regex
      expect(row.rowKey).not.toMatch(/[/\\#?\u0000-\u001f\u007f-\u009f]/);
    }

    // The same id also finds its approval and baseline case-insensitively.
    const input = { ...approvalInput(cluster, new Date()), control: 'node-ssh-deny' as const, targetId: odd, change: ruleChange(odd) };
    const { approval } = await store.requestApproval(input);
    expect(approval.id).toBe(approvalIdFor('node-ssh-deny', odd));
    expect((await store.getApproval(approvalIdFor('node-ssh-deny', odd.toUpperCase())))?.targetId).toBe(odd);
    await store.putBaseline(odd, ['192.0.2.1/32'], new Date());
    expect(await store.getBaseline(odd.toLowerCase())).toEqual(['192.0.2.1/32']);
  });
});

describe('approvals', () => {
  it('gives exactly one of several concurrent requesters a new pending row', async () => {
    const cluster = clusterNamed('race-cluster');
    const requests = await Promise.all(
      Array.from({ length: 5 }, () => store.requestApproval(approvalInput(cluster, new Date()))),
    );
    expect(requests.filter((r) => r.created)).toHaveLength(1);
    const id = approvalIdFor('api-authorized-ranges', cluster);
    for (const r of requests) expect(r.approval).toMatchObject({ id, state: 'pending' });

    const pending = (await store.listApprovals('pending')).filter((a) => a.id === id);
    expect(pending).toHaveLength(1);
    expect(pending[0].change).toEqual(rangesChange(cluster));
  });

  it('returns the pending row unchanged to a later requester while it is pending', async () => {
    const cluster = clusterNamed('pending-cluster');
    const first = await store.requestApproval(approvalInput(cluster, new Date()));
    const again = await store.requestApproval({ ...approvalInput(cluster, new Date()), detail: 'something newer' });
    expect(again.created).toBe(false);
    expect(again.approval.detail).toBe(first.approval.detail);
    expect(again.approval.etag).toBe(first.approval.etag);
  });

  it('applies an update only with the current etag', async () => {
    const cluster = clusterNamed('etag-cluster');
    const { approval } = await store.requestApproval(approvalInput(cluster, new Date()));
    const readBySomeoneElse = (await store.getApproval(approval.id))!;
    expect(readBySomeoneElse.etag).toBe(approval.etag);

    const approved = { ...approval, state: 'approved' as const, decidedBy: 'alice', decidedAt: new Date().toISOString() };
    expect(await store.updateApproval(approved)).toBe(true);

    const rejected = { ...readBySomeoneElse, state: 'rejected' as const, decidedBy: 'bob' };
    expect(await store.updateApproval(rejected)).toBe(false);

    const stored = await store.getApproval(approval.id);
    expect(stored).toMatchObject({ state: 'approved', decidedBy: 'alice' });
    // The winner's record carries the new etag, so it can be updated again (e.g. card delivered).
    expect(approved.etag).toBe(stored!.etag);
    expect(await store.updateApproval({ ...approved, delivered: true })).toBe(true);
    expect((await store.getApproval(approval.id))?.delivered).toBe(true);
  });

  it('replaces a decided approval with a new pending one on the next request', async () => {
    const cluster = clusterNamed('decided-cluster');
    const first = await store.requestApproval(approvalInput(cluster, new Date('2026-03-01T00:00:00Z')));
    const oldEtag = first.approval.etag;
    expect(await store.updateApproval({ ...first.approval, state: 'rejected', decidedBy: 'carol', decidedAt: '2026-03-01T01:00:00Z' })).toBe(true);
    expect((await store.listApprovals('rejected')).map((a) => a.id)).toContain(first.approval.id);

    const second = await store.requestApproval(approvalInput(cluster, new Date('2026-03-02T00:00:00Z')));
    expect(second.created).toBe(true);
    expect(second.approval).toMatchObject({ state: 'pending', requestedAt: '2026-03-02T00:00:00.000Z' });
    const stored = await store.getApproval(first.approval.id);
    expect(stored).toMatchObject({ state: 'pending', requestedAt: '2026-03-02T00:00:00.000Z' });
    expect(stored?.decidedBy).toBeUndefined();
    // A click on the old card can no longer change the new request.
    expect(await store.updateApproval({ ...first.approval, etag: oldEtag, state: 'approved' })).toBe(false);
  });

  it('gives exactly one of several concurrent requesters the row that replaces a decided approval', async () => {
    const cluster = clusterNamed('decided-race-cluster');
    const first = await store.requestApproval(approvalInput(cluster, new Date('2026-03-01T00:00:00Z')));
    expect(await store.updateApproval({ ...first.approval, state: 'approved', decidedBy: 'dave' })).toBe(true);

    const requests = await Promise.all(
      Array.from({ length: 5 }, () => store.requestApproval(approvalInput(cluster, new Date('2026-03-03T00:00:00Z')))),
    );
    expect(requests.filter((r) => r.created)).toHaveLength(1);
    for (const r of requests) expect(r.approval.state).toBe('pending');
    expect((await store.getApproval(first.approval.id))?.state).toBe('pending');
  });

  it('replaces a pending approval that has passed its expiry', async () => {
    const cluster = clusterNamed('expired-cluster');
    await store.requestApproval(approvalInput(cluster, new Date('2026-03-01T00:00:00Z'), 1));
    const later = await store.requestApproval(approvalInput(cluster, new Date('2026-03-01T02:00:00Z'), 1));
    expect(later.created).toBe(true);
    expect(later.approval.requestedAt).toBe('2026-03-01T02:00:00.000Z');
  });

  it('refuses an update without an etag, and reports an unknown id as absent', async () => {
    const cluster = clusterNamed('no-etag-cluster');
    const { approval } = await store.requestApproval(approvalInput(cluster, new Date()));
    await expect(store.updateApproval({ ...approval, etag: undefined })).rejects.toThrow(/etag/);
    expect(await store.getApproval(approvalIdFor('api-authorized-ranges', clusterNamed('never-requested')))).toBeUndefined();
    expect(await store.getApproval('not-an-id')).toBeUndefined();
  });
});

describe('audit', () => {
  it('lists every entry newest first, including 200 written in the same millisecond', async () => {
    const auditStore = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: 'auditvolume' });
    const cluster = clusterNamed('audit-cluster');
    const entry = (at: string, detail: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({
      at,
      control: 'node-ssh-deny',
      clusterId: cluster,
      targetId: nsgNamed('audit-nsg'),
      event: 'remediated',
      mode: 'auto',
      actor: 'netguard (auto)',
      detail,
      ...extra,
    });
    const sameMs = '2026-03-10T12:00:00.123Z';
    const large = { rules: Array.from({ length: 2000 }, (_, i) => ({ name: `rule-${i}`, priority: 100 + i })) };

    await auditStore.audit(entry('2026-03-09T23:59:59.999Z', 'previous day', { before: large, after: { ok: true } }));
    await Promise.all(Array.from({ length: 200 }, (_, i) => auditStore.audit(entry(sameMs, `burst ${i}`))));
    await auditStore.audit(entry('2026-03-11T00:00:00.000Z', 'next day'));

    const listed = await auditStore.listAudit();
    expect(listed).toHaveLength(202);
    expect(listed[0].detail).toBe('next day');
    expect(listed.slice(1, 201).map((e) => e.detail)).toEqual(Array.from({ length: 200 }, (_, i) => `burst ${199 - i}`));
    expect(listed[201]).toMatchObject({ detail: 'previous day', before: large, after: { ok: true }, mode: 'auto' });
    expect(listed[1].before).toBeUndefined();
  });

  it('rejects an entry whose time is not a timestamp', async () => {
    await expect(
      store.audit({ at: 'yesterday', control: 'service-mesh', clusterId: 'x', targetId: 'x', event: 'reported', actor: 'netguard' }),
    ).rejects.toThrow(/yesterday/);
  });
});

describe('configuration and failures', () => {
  it('builds a working store from AzureWebJobsStorage', async () => {
    const fromEnv = storeFromEnvironment({ AzureWebJobsStorage: azurite.connectionString }, { tablePrefix: 'fromenv' });
    expect(fromEnv).toBeInstanceOf(TableStateStore);
    await fromEnv!.putBaseline(clusterNamed('env-cluster'), ['192.0.2.0/28'], new Date());
    expect(await fromEnv!.getBaseline(clusterNamed('env-cluster'))).toEqual(['192.0.2.0/28']);
    expect(fromEnv!.tableName('baselines')).toBe('fromenvbaselines');
  });

  it('surfaces a storage failure with the table and the operation in the message', async () => {
    const wrongKey = azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.from('not the key').toString('base64')}`);
    const badStore = TableStateStore.fromConnectionString(wrongKey, { tablePrefix: 'badkey' });
    const failure = badStore.getBaseline(clusterNamed('whatever'));
    await expect(failure).rejects.toBeInstanceOf(StoreError);
    await expect(failure).rejects.toThrow(/badkeybaselines.*createTable|createTable.*badkeybaselines/);
    await expect(badStore.listAudit()).rejects.toThrow(/badkeyaudit/);
  });
});

describe('recordFindings (a sweep records in bulk)', () => {
  const finding = (cluster: string, nsg: string, status: Finding['status']): Finding => ({
    control: 'node-ssh-deny',
    resourceId: clusterNamed(cluster),
    targetId: nsgNamed(nsg),
    status,
    action: status === 'drift' ? 'reported' : 'none',
    detail: `${cluster} ${status}`,
  });

  test('250 findings land as the latest rows, and driftSince behaves as with recordFinding', async () => {
    const many = Array.from({ length: 250 }, (_, i) => finding(`bulk${i}`, `bulknsg${i}`, i % 2 ? 'drift' : 'compliant'));
    const day1 = new Date('2026-11-01T06:00:00Z');
    await store.recordFindings(many, day1);
    const day2 = new Date('2026-11-02T06:00:00Z');
    await store.recordFindings([finding('bulk1', 'bulknsg1', 'drift'), finding('bulk3', 'bulknsg3', 'compliant'), finding('bulk0', 'bulknsg0', 'drift')], day2);

    const rows = (await store.listFindings()).filter((f) => /\/bulk\d+$/.test(f.resourceId));
    expect(rows).toHaveLength(250);
    const row = (n: number) => rows.find((f) => f.resourceId.endsWith(`/bulk${n}`))!;
    expect(row(1)).toMatchObject({ status: 'drift', at: day2.toISOString(), driftSince: day1.toISOString() }); // still drifting: kept
    expect(row(3).status).toBe('compliant');
    expect(row(3).driftSince).toBeUndefined(); // fixed: cleared
    expect(row(0)).toMatchObject({ status: 'drift', driftSince: day2.toISOString() }); // new drift: starts now
    expect(row(5)).toMatchObject({ status: 'drift', at: day1.toISOString(), driftSince: day1.toISOString() });
  });
});

describe('the event ledger (claims)', () => {
  const window = (now: Date) => ({ doneSince: new Date(now.getTime() - 24 * 3_600_000), leaseSince: new Date(now.getTime() - 15 * 60_000) });

  it('of ten concurrent claims of one event id exactly one wins; the others learn it is being processed', async () => {
    const now = new Date();
    const results = await Promise.all(Array.from({ length: 10 }, () => store.claimEvent('evt-concurrent', now, window(now))));
    expect(results.filter((r) => typeof r === 'object')).toHaveLength(1);
    expect(results.filter((r) => r === 'processing')).toHaveLength(9);
  });

  it('completed: a duplicate within the window, claimable again after it; released: claimable at once', async () => {
    const now = new Date();
    const claim = await store.claimEvent('evt-done', now, window(now));
    if (typeof claim !== 'object') throw new Error(`expected a claim, got ${claim}`);
    await store.completeEvent(claim, now);
    expect(await store.claimEvent('evt-done', now, window(now))).toBe('done');
    const dayLater = new Date(now.getTime() + 25 * 3_600_000);
    expect(typeof (await store.claimEvent('evt-done', dayLater, window(dayLater)))).toBe('object');

    const second = await store.claimEvent('evt-released', now, window(now));
    if (typeof second !== 'object') throw new Error(`expected a claim, got ${second}`);
    await store.releaseEvent(second);
    expect(typeof (await store.claimEvent('evt-released', now, window(now)))).toBe('object');
  });

  it('a claim taken over after its lease cannot be completed or released by the delivery that abandoned it', async () => {
    const then = new Date(Date.now() - 20 * 60_000);
    const abandoned = await store.claimEvent('evt-lease', then, window(then));
    if (typeof abandoned !== 'object') throw new Error(`expected a claim, got ${abandoned}`);
    const now = new Date();
    const taken = await store.claimEvent('evt-lease', now, window(now));
    expect(typeof taken).toBe('object');
    // The old delivery wakes up: its settle is a no-op, the new claim still holds.
    await store.releaseEvent(abandoned);
    await store.completeEvent(abandoned, now);
    expect(await store.claimEvent('evt-lease', now, window(now))).toBe('processing');
  });
});
