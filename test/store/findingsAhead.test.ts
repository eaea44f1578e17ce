// An event's stored findings are read ahead (findingsOf) and handed to recordFindings, which then
// does not read them again: what is recorded must be exactly what the read-after path records
// (driftSince kept while a drift lasts, dropped when it ends), and only the clusters read ahead.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TableStateStore } from '../../shared/store/tables';
import type { Finding } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';

const fixture = (rel: string) => JSON.parse(readFileSync(join(__dirname, '../fixtures/azure', rel), 'utf8'));
const clusterId = (fixture('arm-aks-2026-01-01/ManagedClustersGet.json').responses['200'].body.id as string).replace(/clustername1$/, 'aks-1');
// A cluster whose id begins with the other's: its rows must not be taken for the other's.
const longerId = `${clusterId}0`;
const nsgId = fixture('arm-network-2026-01-01/NetworkSecurityGroupGet.json').responses['200'].body.id as string;

const azurite = useAzurite();
let store: TableStateStore;
beforeAll(() => {
  store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: 'ahead' });
});

const finding = (resourceId: string, status: Finding['status'], detail: string = status): Finding => ({
  control: 'node-ssh-deny',
  resourceId,
  targetId: nsgId,
  status,
  action: status === 'drift' ? 'reported' : 'none',
  detail,
});
const stored = async (resourceId: string) => (await store.listFindings()).find((f) => f.resourceId.toLowerCase() === resourceId.toLowerCase())!;

test('read ahead or read after, a drift keeps its start until it ends', async () => {
  const t1 = new Date('2026-12-01T10:00:00Z');
  await store.recordFindings([finding(clusterId, 'drift'), finding(longerId, 'compliant')], t1);

  // Still drifting at t2, recorded with the rows read ahead: the drift started at t1.
  const known = await store.findingsOf(['node-ssh-deny'], [clusterId]);
  expect(known.ranges.get(`node-ssh-deny|${clusterId.toLowerCase()}`)!.size).toBe(1); // not the longer-named cluster's row
  await store.recordFindings([finding(clusterId, 'drift', 'still')], new Date('2026-12-01T10:05:00Z'), known);
  expect(await stored(clusterId)).toMatchObject({ status: 'drift', detail: 'still', driftSince: t1.toISOString() });

  // The longer-named cluster was not read ahead: its new drift is recorded after reading its row.
  await store.recordFindings([finding(longerId, 'drift')], new Date('2026-12-01T10:06:00Z'), known);
  expect(await stored(longerId)).toMatchObject({ status: 'drift', driftSince: '2026-12-01T10:06:00.000Z' });

  // Fixed at t3: no drift start any more.
  const again = await store.findingsOf(['node-ssh-deny'], [clusterId]);
  await store.recordFindings([finding(clusterId, 'compliant')], new Date('2026-12-01T10:10:00Z'), again);
  expect((await stored(clusterId)).driftSince).toBeUndefined();
});
