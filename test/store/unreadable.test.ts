// Rows and queue messages that do not have the shape NetGuard writes (an older version's, one edited
// by hand, a damaged one) are refused where they are read, with a message that names the row or
// message and the field, instead of travelling on as `undefined` into the engine or a card.
import { TableClient } from '@azure/data-tables';
import { decodeNotice } from '../../shared/notify/queueSink';
import { TableStateStore, tableKey } from '../../shared/store/tables';
import { decodePendingUpdate } from '../../shared/store/verifyQueue';
import { decodeSweepMessage } from '../../shared/sweep/fanout';
import { SweepRunStore } from '../../shared/sweep/runs';
import { useAzurite } from '../helpers/azurite';

const azurite = useAzurite();
const SUB = '11111111-2222-3333-4444-555555555555';
const CLUSTER = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1`;

const raw = (name: string) => TableClient.fromConnectionString(azurite.connectionString, name, { allowInsecureConnection: true });

describe('table rows', () => {
  let store: TableStateStore;
  beforeAll(() => {
    store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: 'unreadable' });
  });

  test('an approval row whose state was edited by hand is refused, naming the row and the field', async () => {
    const { approval } = await store.requestApproval({
      control: 'api-authorized-ranges',
      clusterId: CLUSTER,
      targetId: CLUSTER,
      detail: 'The API server is open to everyone.',
      change: { kind: 'cluster-property', clusterId: CLUSTER, path: ['properties', 'apiServerAccessProfile', 'authorizedIPRanges'], before: [], after: ['203.0.113.0/24'], needsPerson: true, summary: 'Restore the ranges' },
      reason: 'mode approve',
      requestedAt: '2026-12-01T10:00:00.000Z',
      expiresAt: '2026-12-02T10:00:00.000Z',
    });
    expect((await store.getApproval(approval.id))?.state).toBe('pending');
    const table = raw(store.tableName('approvals'));
    const rows = [];
    for await (const r of table.listEntities()) rows.push(r);
    const [row] = rows;
    await table.updateEntity({ partitionKey: row.partitionKey!, rowKey: row.rowKey!, state: 'maybe' }, 'Merge');

    await expect(store.getApproval(approval.id)).rejects.toThrow(/Unreadable approvals row .*state: Invalid enum value.*'maybe'/);
    await expect(store.listApprovals()).rejects.toThrow(/Unreadable approvals row/);
  });

  test('a topology cache entry that does not read back is a cache miss, not a cluster', async () => {
    const cluster = { id: CLUSTER, name: 'aks1', location: 'westeurope', properties: { agentPoolProfiles: [{ name: 'pool1' }] } };
    await store.putCachedCluster({ cluster, subnetIds: [] });
    expect((await store.getCachedClusters([CLUSTER])).size).toBe(1);
    const table = raw(store.tableName('topology'));
    await table.updateEntity({ partitionKey: `sub|${tableKey(SUB)}`, rowKey: `c|${tableKey(CLUSTER)}`, entryJson: JSON.stringify({ cluster: { name: 'no id' } }) }, 'Merge');
    expect((await store.getCachedClusters([CLUSTER])).size).toBe(0);
  });

  test('a sweep result row in a state no version writes is refused', async () => {
    const runs = SweepRunStore.fromConnectionString(azurite.connectionString, 'unreadableruns');
    await runs.createRun('run-1', [SUB], new Date('2026-12-01T06:00:00Z'));
    expect(await runs.listSubscriptions('run-1')).toMatchObject([{ subscriptionId: SUB, state: 'pending' }]);
    await raw('unreadableruns').updateEntity({ partitionKey: 'run-1', rowKey: `sub|${tableKey(SUB)}`, state: 'halfway' }, 'Merge');
    await expect(runs.listSubscriptions('run-1')).rejects.toThrow(/Unreadable sweep result row run-1\/sub\|.*state/);
  });
});

describe('queue messages', () => {
  test('a remediated notice without its finding is not a notice', () => {
    expect(() => decodeNotice({ kind: 'remediated', at: '2026-12-01T10:00:00.000Z' })).toThrow(/Not a NetGuard notice \(.*finding: Required/);
  });

  test('a pending cluster update whose change has no path is refused before it is verified', () => {
    const update = {
      control: 'api-authorized-ranges',
      clusterId: CLUSTER,
      targetId: CLUSTER,
      operation: { resourceId: CLUSTER },
      change: { kind: 'cluster-property', clusterId: CLUSTER, before: [], after: ['203.0.113.0/24'], needsPerson: false, summary: 'Restore the ranges' },
      detail: 'open',
      startedAt: '2026-12-01T10:00:00.000Z',
      attempt: 1,
    };
    expect(() => decodePendingUpdate(Buffer.from(JSON.stringify(update)).toString('base64'))).toThrow(/Not a NetGuard pending cluster update \(change\.path: Required/);
    expect(decodePendingUpdate({ ...update, change: { ...update.change, path: ['properties'] } }).change.path).toEqual(['properties']);
  });

  test('a sweep message with an attempt that is not a count is refused; a missing one is the first', () => {
    expect(() => decodeSweepMessage({ runId: 'r', subscriptionId: SUB, attempt: 'two' })).toThrow(/Not a NetGuard sweep message \(attempt:/);
    expect(decodeSweepMessage({ runId: 'r', subscriptionId: SUB })).toEqual({ runId: 'r', subscriptionId: SUB, attempt: 1 });
  });
});
