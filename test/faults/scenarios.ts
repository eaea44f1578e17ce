// The fault and abuse scenarios of one seed, and how each is counted. Everything is judged from
// outside the product: the proxy's request log, the stand-in's state before and after each write
// (NSGs with the project's exact evaluator over every flow), Azurite's audit/intent rows, the
// connector's calls and the JSON and HTTP answers NetGuard gives.
import fs from 'node:fs';
import path from 'node:path';
import type { ArmManagedCluster, ArmNetworkSecurityGroup } from '../../shared/azure/armTypes';
import type { SeededCluster } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { publishedSample } from '../../testkit/samples';
import type { ProxiedRequest, WriteObservation } from './faultProxy';
import { clusterWidening, driftKey, enforcedDrift, normalized, nsgWidening, vnetSpaceOf, type TargetDrift } from './judge';
import { hash32, rngFor, shuffle } from './prng';
import { buildWorld, cliEnv, REPO_ROOT, RestartableAzurite, runCli, startServe, topIdOf, type World } from './world';

export const BAD_COUNTS = [
  'wrongReports',
  'wideningWrites',
  'outOfScopeCalls',
  'duplicateWrites',
  'duplicateCards',
  'unauditedWrites',
  'hungRuns',
  'abuseAccepted',
] as const;
export type BadCount = (typeof BAD_COUNTS)[number];

export interface Counts extends Record<BadCount, number> {
  /** Enforced drifts NetGuard can fix by itself when the scenario starts. */
  driftsSeeded: number;
  driftsFixed: number;
}

export interface ScenarioResult {
  seed: number;
  scenario: string;
  counts: Counts;
  /** One line per bad count, saying what was seen (for the lead and for reproducing). */
  notes: string[];
  seconds: number;
}

export interface SeedOptions {
  seed: number;
  cli: string;
  /** Copies of the drifted demo fleet in scope (the jest slice uses 1). */
  copies: number;
  /** Share of ARM requests that get a fault. */
  rate: number;
  /** A run (CLI, serve request) that does not end within this is hung. */
  hungBoundMs: number;
  /** Only these scenarios (default all). */
  only?: string[];
  log?: (line: string) => void;
}

export function zeroCounts(): Counts {
  return { driftsSeeded: 0, driftsFixed: 0, wrongReports: 0, wideningWrites: 0, outOfScopeCalls: 0, duplicateWrites: 0, duplicateCards: 0, unauditedWrites: 0, hungRuns: 0, abuseAccepted: 0 };
}

const hashId = (text: string) => `${hash32(text).toString(16)}${hash32(`x${text}`).toString(16)}`;

const ALLOWED_QUERY = /^(api-version|\$[a-z]+)$/i;
const is2xx = (s: number) => s >= 200 && s < 300;

/** A request NetGuard had no business making: another subscription, the tenant, or a mangled id. */
export function outOfScope(r: ProxiedRequest, inScope: string): string | undefined {
  const raw = r.rawUrl.split('?')[0];
  // Kubernetes API requests (instance-metadata) may reach a stand-in on the same address: not ARM ids.
  if (/^\/(api|apis)(\/|$)/.test(raw)) return undefined;
  if (raw.split('/').some((s) => s === '.' || s === '..' || /^%2e%2e?$/i.test(s) || /^%2e$/i.test(s))) return `dot segment in ${r.method} ${r.rawUrl}`;
  for (const k of Object.keys(r.query)) if (!ALLOWED_QUERY.test(k)) return `query parameter "${k}" in ${r.method} ${r.rawUrl}`;
  const prefix = `/subscriptions/${inScope}`.toLowerCase();
  const p = r.path.toLowerCase();
  if (p !== prefix && !p.startsWith(`${prefix}/`)) return `outside ${inScope}: ${r.method} ${r.path}`;
  return undefined;
}

function hung(counts: Counts, notes: string[], what: string): void {
  counts.hungRuns++;
  notes.push(`hung run: ${what}`);
}

/** An applied write that changed the resource (before ≠ after, ignoring ETags and tags). */
function changed(o: WriteObservation): boolean {
  return is2xx(o.request.upstreamStatus) && o.request.method !== 'POST' && normalized(o.before) !== normalized(o.after);
}

export function isNoOpWrite(o: WriteObservation): boolean {
  return is2xx(o.request.upstreamStatus) && ['PUT', 'PATCH'].includes(o.request.method) && o.before !== undefined && normalized(o.before) === normalized(o.after);
}

/** Counts that come from the write log alone: widening and duplicate writes. */
function judgeWrites(world: World, writes: WriteObservation[], counts: Counts, notes: string[]): void {
  const space = vnetSpaceOf(world.sandbox);
  for (const o of writes) {
    if (!is2xx(o.request.upstreamStatus)) continue;
    const top = topIdOf(o.request.path) ?? '';
    let widened: string | undefined;
    if (/\/networksecuritygroups\//i.test(top)) widened = nsgWidening(o.before as ArmNetworkSecurityGroup | undefined, o.after as ArmNetworkSecurityGroup | undefined, space);
    else if (/\/managedclusters\//i.test(top)) widened = clusterWidening(o.before as ArmManagedCluster | undefined, o.after as ArmManagedCluster | undefined);
    if (widened) {
      counts.wideningWrites++;
      notes.push(`widening write: ${o.request.method} ${o.request.path} opened ${widened}`);
    }
    if (isNoOpWrite(o)) {
      counts.duplicateWrites++;
      notes.push(`duplicate write: ${o.request.method} ${o.request.path} changed nothing (fault on it: ${o.request.fault ?? 'none'})`);
    }
  }
}

function judgeScope(world: World, requests: ProxiedRequest[], counts: Counts, notes: string[]): void {
  for (const r of requests) {
    const why = outOfScope(r, world.inScope);
    if (why) {
      counts.outOfScopeCalls++;
      if (notes.filter((n) => n.startsWith('out-of-scope')).length < 5) notes.push(`out-of-scope call: ${why}`);
    }
  }
}

/** Writes that changed a resource whose audit/intent rows name it nowhere. */
async function judgeAudit(azurite: RestartableAzurite, writes: WriteObservation[], counts: Counts, notes: string[]): Promise<void> {
  const rows = await azurite.auditRows();
  for (const o of writes.filter(changed)) {
    const top = (topIdOf(o.request.path) ?? o.request.path).toLowerCase();
    if (!rows.some((r) => r.includes(top))) {
      counts.unauditedWrites++;
      notes.push(`unaudited write: ${o.request.method} ${o.request.path} (no audit or intent row names ${top})`);
    }
  }
}

/** Drifts NetGuard can fix on its own (a person must decide the Allow-at-100 case; exempt and bare subnets are left). */
function fixable(world: World): SeededCluster[] {
  return world.clusters.filter((c) => !c.exempt && !c.needsPerson);
}

function driftMap(world: World): Map<string, TargetDrift> {
  const m = new Map<string, TargetDrift>();
  for (const c of fixable(world)) for (const d of enforcedDrift(world.sandbox, c)) m.set(driftKey(d.control, d.targetId), d);
  return m;
}

/** A drift NetGuard could fix by itself: not the subnet without an NSG (that one can only be reported). */
const canFix = (d: TargetDrift) => d.drifted && !/\/subnets\//i.test(d.targetId);

function parseReport(stdout: string): RunReport | undefined {
  try {
    const r = JSON.parse(stdout) as RunReport;
    return Array.isArray(r.findings) ? r : undefined;
  } catch {
    return undefined;
  }
}

const settingsEnv = (world: World, azurite: RestartableAzurite, extra: Record<string, string> = {}) =>
  cliEnv({
    AKS_NETGUARD_ARM_ENDPOINT: world.proxy.endpoint,
    AKS_NETGUARD_SUBSCRIPTIONS: world.inScope,
    AKS_NETGUARD_AUTHORIZED_IP_RANGES: '203.0.113.0/24',
    // Short, so a stalled request costs seconds (the default, 30 s, would only slow the suite).
    AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '5',
    AzureWebJobsStorage: azurite.connectionString,
    ...extra,
  });

// ---------------------------------------------------------------- scenario: sweeps under ARM faults

/**
 * `aks-netguard sweep --mode auto --json` twice under ~rate faults (throttling, 5xx, resets, stalls,
 * lost answers, 412 races), with Azurite stopped right after one of the first writes and restarted a
 * few seconds later. Every fix must be reported `remediated` by the run that made it, audited, and
 * never widen; the second sweep finishes what the first could not.
 */
async function sweepScenario(opts: SeedOptions, azurite: RestartableAzurite): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await buildWorld(opts.seed, 'sweep', { copies: opts.copies, rate: opts.rate });
  const counts = zeroCounts();
  const notes: string[] = [];
  const random = rngFor(opts.seed, 'sweep:outage');
  const outageAfter = 1 + Math.floor(random() * 3);
  world.afterAppliedWrite = (n) => {
    if (n === outageAfter) azurite.outage(2000 + Math.floor(random() * 3000));
  };
  try {
    const initial = driftMap(world);
    counts.driftsSeeded = [...initial.values()].filter(canFix).length;
    for (let run = 1; run <= 2; run++) {
      const atStart = driftMap(world);
      const firstWrite = world.writes.length;
      const result = await runCli(opts.cli, ['sweep', '--mode', 'auto', '--json'], settingsEnv(world, azurite), opts.hungBoundMs);
      opts.log?.(`seed ${opts.seed} sweep run ${run}: exit ${result.code}${result.hung ? ' (hung, killed)' : ''}`);
      if (result.hung) {
        counts.hungRuns++;
        notes.push(`hung run: sweep run ${run} did not end within ${opts.hungBoundMs} ms`);
      }
      await azurite.up();
      const report = parseReport(result.stdout);
      const atEnd = driftMap(world);
      const runWrites = world.writes.slice(firstWrite);
      // A fix made by this run (its write changed the target, the drift is gone) must be reported remediated.
      for (const [key, before] of atStart) {
        if (!canFix(before) || atEnd.get(key)?.drifted) continue;
        const wrote = runWrites.some((o) => changed(o) && topIdOf(o.request.path)?.toLowerCase() === before.targetId.toLowerCase());
        if (!wrote) continue;
        const reported = report?.findings.some((f) => f.control === before.control && f.targetId.toLowerCase() === before.targetId.toLowerCase() && f.action === 'remediated');
        if (!reported) {
          counts.wrongReports++;
          const said = report?.findings.find((f) => f.control === before.control && f.targetId.toLowerCase() === before.targetId.toLowerCase());
          notes.push(`wrong report: run ${run} fixed ${before.control} on ${before.targetId} but reported ${said ? `${said.status}/${said.action}: ${said.detail}` : report ? 'no finding' : `no report (exit ${result.code})`}`);
        }
      }
      // A drift that was there when the run started is never "compliant".
      for (const f of report?.findings ?? []) {
        const before = atStart.get(driftKey(f.control, f.targetId));
        if (before?.drifted && f.status === 'compliant') {
          counts.wrongReports++;
          notes.push(`wrong report: run ${run} called ${f.control} on ${f.targetId} compliant although it was drifted: ${f.detail}`);
        }
      }
    }
    const final = driftMap(world);
    counts.driftsFixed = [...initial.entries()].filter(([k, d]) => canFix(d) && !final.get(k)?.drifted).length;
    judgeWrites(world, world.writes, counts, notes);
    judgeScope(world, world.proxy.requests, counts, notes);
    await judgeAudit(azurite, world.writes, counts, notes);
  } finally {
    await world.stop();
  }
  return { seed: opts.seed, scenario: 'sweep', counts, notes, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------- scenario: events, three times each

const OP = {
  nsgWrite: 'Microsoft.Network/networkSecurityGroups/write',
  clusterWrite: 'Microsoft.ContainerService/managedClusters/write',
} as const;

/**
 * Microsoft's published ResourceWriteSuccess sample pointed at a resource (the fixture is found by
 * walking up, so this also works from the bundled runner).
 */
function writeEvent(operationName: string, resourceId: string, id: string): Record<string, any> {
  const published = publishedSample('eventgrid/eventgrid-schema/subscription_ResourceWriteSuccess.json');
  const e = structuredClone(Array.isArray(published) ? published[0] : published) as Record<string, any>;
  const subscriptionId = resourceId.split('/')[2] ?? '';
  e.id = id;
  e.subject = resourceId;
  e.topic = `/subscriptions/${subscriptionId}`;
  e.data.resourceUri = resourceId;
  e.data.operationName = operationName;
  e.data.resourceProvider = operationName.split('/')[0];
  e.data.subscriptionId = subscriptionId;
  e.data.authorization.scope = resourceId;
  e.data.authorization.action = operationName;
  if (e.data.httpRequest) e.data.httpRequest.url = `https://management.azure.com${resourceId}?api-version=2024-05-01`;
  return e;
}

/** Event Grid's first redelivery steps (10 s, 30 s, 1 min, 5 min), ten times faster. */
const REDELIVERY_DELAYS_MS = [1_000, 3_000, 6_000, 30_000];

interface Delivery {
  group: string;
  body: string;
  headers: Record<string, string>;
}

async function post(url: string, d: { body: string; headers: Record<string, string> }, boundMs: number): Promise<{ status: number; json: any; hung: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), boundMs);
  try {
    const res = await fetch(url, { method: 'POST', body: d.body, headers: d.headers, signal: controller.signal });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, json, hung: false };
  } catch (e) {
    // A reset (status 0) or the bound (hung).
    return { status: 0, json: String((e as Error).message), hung: controller.signal.aborted };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `aks-netguard serve` as Event Grid's webhook: first hostile input (an oversized event, a browser
 * page's text/plain post, events for another subscription, mangled resource ids), then every drift's
 * event delivered three times at once in a seeded order, redelivered while NetGuard answers 500 (as
 * Event Grid does), under ARM faults and an Azurite outage. `handle-event` gets an oversized file.
 */
async function eventsScenario(opts: SeedOptions, azurite: RestartableAzurite): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await buildWorld(opts.seed, 'events', { copies: opts.copies, rate: opts.rate });
  const counts = zeroCounts();
  const notes: string[] = [];
  const random = rngFor(opts.seed, 'events');
  const env = settingsEnv(world, azurite, { AKS_NETGUARD_MODE: 'auto' });
  const serve = await startServe(opts.cli, env, opts.hungBoundMs);
  const events = `${serve.url}/api/events`;
  const json = { 'content-type': 'application/json', 'aeg-event-type': 'Notification' };
  try {
    // ---- hostile input, faults off, one at a time: any ARM request it causes is counted.
    world.proxy.enabled = false;
    const target = world.clusters.find((c) => c.driftedControls.includes('http-application-routing') && !c.exempt) ?? world.clusters[0];
    const evt = (op: string, id: string) => writeEvent(op, id, `faults-${opts.seed}-${hashId(`${op}|${id}`)}`);
    const hostile: Array<{ what: string; body: string; headers: Record<string, string>; refused: (s: number) => boolean }> = [];
    const big = evt(OP.clusterWrite, target.clusterId);
    big.data.padding = 'x'.repeat(2 * 1024 * 1024);
    hostile.push({ what: 'a 2 MiB event', body: JSON.stringify([big]), headers: json, refused: (s) => s === 413 });
    hostile.push({
      what: 'text/plain with Origin: https://evil.example',
      body: JSON.stringify([evt(OP.clusterWrite, target.clusterId)]),
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example', 'aeg-event-type': 'Notification' },
      // DESIGN names 415 for the content type; a refusal of the Origin itself may say 400 or 403.
      refused: (s) => s === 400 || s === 403 || s === 415,
    });
    hostile.push({ what: 'a body that is not JSON', body: '{"id": [', headers: json, refused: (s) => s === 400 });
    for (const h of hostile) {
      const seq = world.proxy.requests.length;
      const r = await post(events, h, opts.hungBoundMs);
      const armCalls = world.proxy.requests.length - seq;
      if (r.hung) hung(counts, notes, `serve gave no answer to ${h.what} within ${opts.hungBoundMs} ms`);
      if (!h.refused(r.status) || armCalls > 0) {
        counts.abuseAccepted++;
        notes.push(`abuse accepted: serve answered ${r.status || 'a reset'} to ${h.what}${armCalls ? ` and made ${armCalls} ARM calls` : ''}`);
      }
    }
    {
      const seq = world.proxy.requests.length;
      const r = await runCli(opts.cli, ['handle-event', '-', '--json'], env, opts.hungBoundMs, JSON.stringify([big]));
      const armCalls = world.proxy.requests.length - seq;
      if (r.hung) hung(counts, notes, `handle-event on a 2 MiB event did not end within ${opts.hungBoundMs} ms`);
      if (r.code !== 2 || armCalls > 0) {
        counts.abuseAccepted++;
        notes.push(`abuse accepted: handle-event exited ${r.code} on a 2 MiB event${armCalls ? ` after ${armCalls} ARM calls` : ''}`);
      }
    }
    // Mangled ids and other subscriptions: acknowledged, no call (judged from the proxy log below).
    const mangled = [
      `/subscriptions/..`,
      `${target.clusterId.replace(/[^/]+$/, '')}.`,
      `${target.clusterId}?api-version=1&y=`,
    ];
    for (const id of mangled) await post(events, { body: JSON.stringify([evt(OP.clusterWrite, id)]), headers: json }, opts.hungBoundMs);

    // ---- the real deliveries, with faults and an outage.
    world.proxy.enabled = true;
    const outageAfter = 1 + Math.floor(random() * 3);
    world.afterAppliedWrite = (n) => {
      if (n === outageAfter) azurite.outage(2000 + Math.floor(random() * 3000));
    };
    const initial = driftMap(world);
    counts.driftsSeeded = [...initial.values()].filter(canFix).length;
    // One event per drifted target, named by the target (the group); three deliveries of each.
    const groups = new Map<string, Record<string, any>>();
    for (const d of initial.values()) {
      if (!canFix(d) || groups.has(d.targetId.toLowerCase())) continue;
      const op = /\/networksecuritygroups\//i.test(d.targetId) ? OP.nsgWrite : OP.clusterWrite;
      groups.set(d.targetId.toLowerCase(), evt(op, d.targetId));
    }
    for (const c of world.outClusters.filter((x) => x.driftedControls.length > 0).slice(0, 3)) {
      groups.set(`out:${c.clusterId.toLowerCase()}`, evt(OP.clusterWrite, c.clusterId));
      if (c.nsgIds[0]) groups.set(`out:${c.nsgIds[0].toLowerCase()}`, evt(OP.nsgWrite, c.nsgIds[0]));
    }
    const deliveries: Delivery[] = shuffle(
      [...groups.entries()].flatMap(([group, e]) => [0, 1, 2].map(() => ({ group, body: JSON.stringify([e]), headers: json }))),
      random,
    );
    const answers = new Map<string, Array<{ status: number; remediated: number }>>();
    const deliver = async (d: Delivery): Promise<void> => {
      // Event Grid redelivers on 5xx or no answer, 10 s, 30 s, 1 min, 5 min, … after the first try
      // (for 24 hours). Here the same steps, ten times faster, and only the first few: an outage of
      // the world (Azurite down for seconds, then the storage client's pause) must be outlasted, as
      // Event Grid outlasts it, or the scenario only tests "storage is down" again and again.
      for (let attempt = 0; attempt <= REDELIVERY_DELAYS_MS.length; attempt++) {
        const r = await post(events, d, opts.hungBoundMs);
        if (r.hung) {
          counts.hungRuns++;
          notes.push(`hung run: a delivery for ${d.group} got no answer within ${opts.hungBoundMs} ms`);
        }
        const list = answers.get(d.group) ?? [];
        list.push({ status: r.status, remediated: Number(r.json?.summary?.remediated ?? 0) });
        answers.set(d.group, list);
        if (is2xx(r.status) || (r.status >= 400 && r.status < 500) || attempt === REDELIVERY_DELAYS_MS.length) return;
        await new Promise((res) => setTimeout(res, REDELIVERY_DELAYS_MS[attempt]));
      }
    };
    // All three copies of every event at once, in the seeded order.
    await Promise.all(deliveries.map((d) => deliver(d)));
    await azurite.up();

    const final = driftMap(world);
    counts.driftsFixed = [...initial.entries()].filter(([k, d]) => canFix(d) && !final.get(k)?.drifted).length;
    for (const [key, d] of initial) {
      if (!canFix(d) || final.get(key)?.drifted) continue;
      const wrote = world.writes.some((o) => changed(o) && topIdOf(o.request.path)?.toLowerCase() === d.targetId.toLowerCase());
      const said = answers.get(d.targetId.toLowerCase()) ?? [];
      if (wrote && !said.some((a) => is2xx(a.status) && a.remediated > 0)) {
        counts.wrongReports++;
        notes.push(`wrong report: the deliveries for ${d.targetId} fixed ${d.control} but none answered remediated (${said.map((a) => `${a.status}/${a.remediated}`).join(', ')})`);
      }
    }
    // Check-then-act on duplicate deliveries: a losing delivery must not ask a person about a drift
    // another delivery already fixed (that card would be a duplicate of the fix notice).
    {
      const { TableStateStore } = await import('../../shared/store/tables');
      const store = TableStateStore.fromConnectionString(azurite.connectionString);
      for (const a of await store.listApprovals('pending')) {
        const d = final.get(driftKey(a.control, a.targetId));
        if (a.targetId.toLowerCase().includes(world.inScope.toLowerCase()) && d && !d.drifted && initial.get(driftKey(a.control, a.targetId))?.drifted) {
          counts.duplicateCards++;
          notes.push(`duplicate cards: an approval is pending for ${a.control} on ${a.targetId}, a drift a concurrent delivery already fixed`);
        }
      }
    }
    judgeWrites(world, world.writes, counts, notes);
    judgeScope(world, world.proxy.requests, counts, notes);
    if (!(await serve.stop(opts.hungBoundMs))) {
      counts.hungRuns++;
      notes.push('hung run: serve did not stop on Ctrl-C');
    }
    await judgeAudit(azurite, world.writes, counts, notes);
  } finally {
    await serve.stop(5000);
    await world.stop();
  }
  return { seed: opts.seed, scenario: 'events', counts, notes, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------- scenario: approvals and card actions

const TENANT = 'b28fdbfd-2b78-4f93-b0f8-8881793f0f8f';
const FOREIGN_TENANT = '11111111-2222-4333-8444-555555555555';
const APPROVER = 'c5e99701-2a32-49c1-a660-4629ceeb8c61';
const STRANGER = '0f0f0f0f-1e1e-4d2d-8c3c-4b4b4b4b4b4b';

/** Every message on the notice queue, decoded, left in place (peeked in pages by receiving and re-hiding is not needed: the queue is read once at the end). */
async function noticesOnQueue(connectionString: string): Promise<Array<Record<string, any>>> {
  const { QueueClient } = await import('@azure/storage-queue');
  const queue = new QueueClient(connectionString, 'netguard-notices', { allowInsecureConnection: true } as never);
  const out: Array<Record<string, any>> = [];
  if (!(await queue.exists())) return out;
  for (let round = 0; round < 200; round++) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 300 });
    if (receivedMessageItems.length === 0) break;
    for (const m of receivedMessageItems) {
      try {
        out.push(JSON.parse(m.messageText.startsWith('{') ? m.messageText : Buffer.from(m.messageText, 'base64').toString('utf8')));
      } catch {
        /* not a notice */
      }
    }
  }
  return out;
}

/** An Action.Execute click, cloned from Microsoft's published invoke sample. */
function cardClick(serviceUrl: string, o: { approvalId: string; nonce: string; from: string; tenant: string; action?: string }): Record<string, any> {
  const a = structuredClone(TEAMS_INVOKE) as Record<string, any>;
  const action = o.action ?? 'approve';
  a.serviceUrl = serviceUrl;
  a.id = `f:${hashId(JSON.stringify(o) + Math.random())}`;
  a.conversation = { id: '19:faults@thread.tacv2;messageid=1767765488332', conversationType: 'channel', isGroup: true, tenantId: o.tenant };
  a.channelData.tenant.id = o.tenant;
  a.from.aadObjectId = o.from;
  a.value = { action: { type: 'Action.Execute', title: action, verb: `netguard.${action}`, data: { approvalId: o.approvalId, action, nonce: o.nonce } }, trigger: 'manual' };
  return a;
}

let TEAMS_INVOKE: unknown;

/**
 * Approve-mode drifts: the sweep twice and each cluster event three times at once (a person must get
 * one card per drift, not three), then clicks on the cards through `serve`'s /api/messages while the
 * Teams connector is down: a forged nonce, a click from a foreign tenant, one from a stranger, one on
 * an expired request (none may change anything), and one valid click sent three times at once (the
 * fix is applied once).
 */
async function approvalsScenario(opts: SeedOptions, azurite: RestartableAzurite): Promise<ScenarioResult> {
  const started = Date.now();
  const world = await buildWorld(opts.seed, 'approvals', { copies: opts.copies, rate: opts.rate });
  const counts = zeroCounts();
  const notes: string[] = [];
  const random = rngFor(opts.seed, 'approvals');
  const { ConnectorStandIn } = await import('../teams/connectorStandIn');
  const connector = await ConnectorStandIn.start();
  TEAMS_INVOKE ??= JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'teams', 'teams.net_invoke_adaptiveCard-action_personal.json'), 'utf8'));
  // Tables of their own (the approvals of other scenarios live under the default prefix too).
  const env = settingsEnv(world, azurite, {
    AKS_NETGUARD_MODE: 'approve',
    AKS_NETGUARD_APPROVERS: APPROVER,
    MicrosoftAppTenantId: TENANT,
  });
  const serve = await startServe(opts.cli, env, opts.hungBoundMs);
  try {
    // Drifts here wait for a person, so they are not counted as seeded/fixed (the table's "drifts
    // fixed" is about what NetGuard fixes by itself); the clicks are judged below.
    // Sweeps and triple deliveries of every cluster's event, all at once.
    const clusterEvents = world.clusters.filter((c) => !c.exempt).map((c) => writeEvent(OP.clusterWrite, c.clusterId, `faults-${opts.seed}-approve-${hashId(c.clusterId)}`));
    const deliveries = shuffle(clusterEvents.flatMap((e) => [0, 1, 2].map(() => JSON.stringify([e]))), random);
    const sweeps = [1, 2].map(() => runCli(opts.cli, ['sweep', '--json'], env, opts.hungBoundMs));
    const posts = deliveries.map((body) => post(`${serve.url}/api/events`, { body, headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' } }, opts.hungBoundMs));
    for (const r of await Promise.all(sweeps)) if (r.hung) hung(counts, notes, `an approve-mode sweep did not end within ${opts.hungBoundMs} ms`);
    for (const r of await Promise.all(posts)) if (r.hung) hung(counts, notes, `a cluster event delivery got no answer within ${opts.hungBoundMs} ms`);
    await azurite.up();

    // One card per approval request: duplicate notices for the same drift are duplicate cards.
    const { TableStateStore } = await import('../../shared/store/tables');
    const store = TableStateStore.fromConnectionString(azurite.connectionString);
    const pending = (await store.listApprovals('pending')).filter((a) => a.clusterId.toLowerCase().includes(world.inScope.toLowerCase()));
    const notices = (await noticesOnQueue(azurite.connectionString)).filter((n) => n.kind === 'approval-requested' && String(n.approval?.targetId ?? '').toLowerCase().includes(world.inScope.toLowerCase()));
    opts.log?.(`seed ${opts.seed} approvals: ${pending.length} pending approvals, ${notices.length} approval notices queued`);
    const perTarget = new Map<string, number>();
    for (const n of notices) {
      const key = `${n.approval.control}|${String(n.approval.targetId).toLowerCase()}`;
      perTarget.set(key, (perTarget.get(key) ?? 0) + 1);
    }
    for (const [key, n] of perTarget) {
      if (n > 1) {
        counts.duplicateCards += n - 1;
        notes.push(`duplicate cards: ${n} approval requests queued for ${key}`);
      }
    }

    // Card actions, with the connector down (every call to it fails).
    connector.failNext(10_000, 503);
    const { TeamsTables } = await import('../../shared/teams/channels');
    const tables = TeamsTables.fromConnectionString(azurite.connectionString);
    const click = async (activity: Record<string, any>) => post(`${serve.url}/api/messages`, { body: JSON.stringify(activity), headers: { 'content-type': 'application/json' } }, opts.hungBoundMs);
    const changesTo = (targetId: string, fromIndex: number) => world.writes.slice(fromIndex).filter((o) => changed(o) && topIdOf(o.request.path)?.toLowerCase() === targetId.toLowerCase()).length;
    const candidates = shuffle(pending, random);
    const hostile: Array<{ what: string; make: (a: (typeof pending)[number], nonce: string) => Record<string, any>; expire?: boolean }> = [
      { what: 'a forged nonce', make: (a) => cardClick(connector.serviceUrl, { approvalId: a.id, nonce: 'forged-nonce-0000000000000', from: APPROVER, tenant: TENANT }) },
      { what: 'a click from a foreign tenant', make: (a, nonce) => cardClick(connector.serviceUrl, { approvalId: a.id, nonce, from: APPROVER, tenant: FOREIGN_TENANT }) },
      { what: 'a click from someone not in AKS_NETGUARD_APPROVERS', make: (a, nonce) => cardClick(connector.serviceUrl, { approvalId: a.id, nonce, from: STRANGER, tenant: TENANT }) },
      { what: 'a click on an expired request', make: (a, nonce) => cardClick(connector.serviceUrl, { approvalId: a.id, nonce, from: APPROVER, tenant: TENANT }), expire: true },
    ];
    for (const h of hostile) {
      const approval = candidates.shift();
      if (!approval) break;
      // The nonce the card carries, issued through the product's own table as delivery would.
      const nonce = await tables.nonceFor(approval.id, approval.requestedAt);
      if (h.expire) {
        const current = await store.getApproval(approval.id);
        if (current) await store.updateApproval({ ...current, expiresAt: new Date(Date.now() - 60_000).toISOString() });
      }
      const from = world.writes.length;
      const r = await click(h.make(approval, nonce));
      opts.log?.(`seed ${opts.seed} approvals: ${h.what} → ${r.status}`);
      if (r.hung) hung(counts, notes, `${h.what} got no answer within ${opts.hungBoundMs} ms`);
      const after = await store.getApproval(approval.id);
      const writes = changesTo(approval.targetId, from);
      if (writes > 0 || after?.state === 'approved') {
        counts.abuseAccepted++;
        notes.push(`abuse accepted: ${h.what} on ${approval.control}/${approval.targetId} → state ${after?.state}, ${writes} write(s)`);
      }
    }
    // A stranger's channel (another tenant, its own serviceUrl) asks to receive the cards.
    {
      const m = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'teams', 'teams.net_message_channel_mention.json'), 'utf8')) as Record<string, any>;
      const strangerUrl = 'http://127.0.0.1:9/stranger/';
      m.serviceUrl = strangerUrl;
      m.text = '<at>ridotest</at> subscribe';
      m.conversation.id = '19:stranger@thread.tacv2;messageid=1';
      m.conversation.tenantId = FOREIGN_TENANT;
      m.channelData.tenant.id = FOREIGN_TENANT;
      m.channelData.channel.id = '19:stranger@thread.tacv2';
      m.from.aadObjectId = STRANGER;
      const r = await click(m);
      const channels = await tables.listChannels().catch(() => []);
      if (channels.some((c) => c.reference.serviceUrl === strangerUrl)) {
        counts.abuseAccepted++;
        notes.push(`abuse accepted: a stranger from another tenant subscribed a channel with its own serviceUrl (answer ${r.status})`);
      }
    }
    const valid = candidates.shift();
    if (valid) {
      const nonce = await tables.nonceFor(valid.id, valid.requestedAt);
      const from = world.writes.length;
      const answers = await Promise.all([0, 1, 2].map(() => click(cardClick(connector.serviceUrl, { approvalId: valid.id, nonce, from: APPROVER, tenant: TENANT }))));
      for (const r of answers) if (r.hung) hung(counts, notes, `a valid click got no answer within ${opts.hungBoundMs} ms`);
      const writes = changesTo(valid.targetId, from);
      opts.log?.(`seed ${opts.seed} approvals: a valid click three times → ${answers.map((a) => a.status).join(',')}, ${writes} change(s), state ${(await store.getApproval(valid.id))?.state}`);
      if (writes > 1) {
        counts.abuseAccepted++;
        notes.push(`abuse accepted: one approval clicked three times at once changed ${valid.targetId} ${writes} times`);
      }
    }
    judgeWrites(world, world.writes, counts, notes);
    judgeScope(world, world.proxy.requests, counts, notes);
    if (!(await serve.stop(opts.hungBoundMs))) {
      counts.hungRuns++;
      notes.push('hung run: serve did not stop on Ctrl-C');
    }
    await judgeAudit(azurite, world.writes, counts, notes);
  } finally {
    await serve.stop(5000);
    await connector.stop();
    await world.stop();
  }
  return { seed: opts.seed, scenario: 'approvals', counts, notes, seconds: (Date.now() - started) / 1000 };
}

export const SCENARIOS: Record<string, (opts: SeedOptions, azurite: RestartableAzurite) => Promise<ScenarioResult>> = {
  sweep: sweepScenario,
  events: eventsScenario,
  approvals: approvalsScenario,
};

/** Every scenario of one seed, on one Azurite (restarted inside the scenarios). */
export async function runSeed(opts: SeedOptions): Promise<ScenarioResult[]> {
  const azurite = await RestartableAzurite.start();
  const results: ScenarioResult[] = [];
  try {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      if (opts.only && !opts.only.includes(name)) continue;
      results.push(await scenario(opts, azurite));
      opts.log?.(`seed ${opts.seed} ${name}: ${JSON.stringify(results[results.length - 1].counts)}`);
    }
  } finally {
    await azurite.stop();
  }
  return results;
}

export function total(results: ScenarioResult[]): Counts {
  const sum = zeroCounts();
  for (const r of results) for (const k of Object.keys(sum) as Array<keyof Counts>) sum[k] += r.counts[k];
  return sum;
}
