// The daily digest: built from the sweep's report, the approvals, the audit trail and the previous
// digests, posted to every subscribed channel, then remembered for tomorrow's "since the previous digest".
import type { StateStore } from '../store/types';
import type { ControlId, RunReport } from '../types';
import { buildDigest, countsByControl, openDriftKeys, type AdaptiveCard, type DigestHistory } from './cards';
import type { TeamsTables } from './channels';

const DAY_MS = 86_400_000;
const HISTORY_DAYS = 14;

export interface DigestDeps {
  store: StateStore;
  tables: TeamsTables;
  /** Posts the card to every subscribed channel (NetGuardBot.postToSubscribed). */
  post(deliveryKey: string, card: AdaptiveCard): Promise<{ channels: number; posted: number }>;
}

/** History for the digest at `at`: the previous snapshot, 14 days of drift, recurring fixes. */
export async function loadDigestHistory(deps: Pick<DigestDeps, 'store' | 'tables'>, at: string): Promise<DigestHistory> {
  const today = at.slice(0, 10);
  const since = Date.parse(at) - HISTORY_DAYS * DAY_MS;
  const [snapshots, audit] = await Promise.all([deps.tables.listDigestSnapshots(), deps.store.listAudit()]);
  const earlier = snapshots.filter((s) => s.date < today);
  const previous = earlier[earlier.length - 1];

  const fixes = audit.filter((e) => e.event === 'remediated' || e.event === 'approved-applied').filter((e) => Date.parse(e.at) >= since);
  const fixedPerDay = new Map<string, number>();
  const perTarget = new Map<string, { control: ControlId; targetId: string; times: number }>();
  for (const e of fixes) {
    const day = e.at.slice(0, 10);
    fixedPerDay.set(day, (fixedPerDay.get(day) ?? 0) + 1);
    const key = `${e.control}|${e.targetId.toLowerCase()}`;
    const row = perTarget.get(key) ?? { control: e.control, targetId: e.targetId, times: 0 };
    row.times++;
    perTarget.set(key, row);
  }
  const days = earlier
    .filter((s) => Date.parse(s.at) >= since)
    .map((s) => ({ date: s.date, drift: s.drift, remediated: fixedPerDay.get(s.date) ?? 0 }));
  return {
    previous: previous ? { at: previous.at, counts: previous.counts, openDrift: previous.openDrift } : undefined,
    days,
    recurring: [...perTarget.values()].filter((r) => r.times > 1).sort((a, b) => b.times - a.times),
  };
}

/** Builds today's digest from the sweep's report and posts it; the snapshot is saved once it is out. */
export async function buildAndSendDigest(report: RunReport, deps: DigestDeps, at = new Date().toISOString()): Promise<{ channels: number; posted: number; card: AdaptiveCard }> {
  const [history, approvals] = await Promise.all([loadDigestHistory(deps, at), deps.store.listApprovals()]);
  const today = at.slice(0, 10);
  const open = openDriftKeys(report);
  // Today's bar belongs in the chart too.
  history.days.push({ date: today, drift: open.length, remediated: report.summary.remediated });
  const card = buildDigest(report, history, approvals, at);
  const result = await deps.post(`digest|${at}`, card);
  await deps.tables.putDigestSnapshot({
    date: today,
    at,
    drift: open.length,
    remediated: report.summary.remediated,
    counts: countsByControl(report, approvals),
    openDrift: open,
  });
  return { ...result, card };
}
