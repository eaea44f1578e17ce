// `npm run bench [-- --json] [--latency MS]`: NetGuard's performance on the ARM sandbox with injected
// round-trip latency and synthetic fleets. A benchmark, never part of `npm test`.
//   event path   time per event (p50/p99, without and with ARM round trips) and ARM calls per event
//   sweep        1,000 and 10,000 resources over 50 subscriptions, 100,000 over 500, fanned out as the
//                Function App does (one sweep per subscription; worker child processes stand for the
//                instances, each sweeping its batch size at once): seconds, ARM calls, the lower bound
//                (list pages, and one kubeconfig per cluster), the largest peak RSS of one worker; its
//                Kubernetes part: API calls against their lower bound (one namespace list and one
//                policy list per cluster), one API stand-in for all
//   naive        the same reads done one GET per resource, one at a time (a baseline, bench-only)
//   cold start   the package `npm run package` builds (the one azd deploys), loaded in fresh Node
//                processes as the Functions worker loads it: `app` is every file package.json `main`
//                matches, registered through the real @azure/functions (the instance start, whatever
//                function is triggered); per function, that plus the code its first invocation imports;
//                `teamsSdk`, what the first Teams request or notice adds on top
// Run as a bundle (the npm script bundles it with esbuild); a sweep child is this same file.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import pLimit from 'p-limit';
import { buildPackage, measureColdStart, REPO_ROOT } from '../scripts/package';
import { ArmGateway } from '../shared/azure/arm';
import { loadSettings } from '../shared/config';
import { Engine } from '../shared/engine/engine';
import { processEventBatch } from '../shared/events/handler';
import { parseEvents } from '../shared/events/parse';
import type { Runtime } from '../shared/runtime';
import { ownPolicyObject } from '../shared/kube/networkPolicy';
import { ArmSandbox } from '../testkit/armServer';
import { KubeSandbox } from '../testkit/kubeServer';
import { startAzurite } from '../testkit/azuriteProcess';
import { TableStateStore } from '../shared/store/tables';
import { tableClientOptions } from '../shared/store/clientOptions';
import { TableClient } from '@azure/data-tables';
import { publishedSample } from '../testkit/samples';
import { sweepOneSubscription } from '../shared/sweep/fanout';
import { benchSubscriptionId, listPagesNeeded, seedCompliantCluster, seedCompliantFleet, type SyntheticFleet } from './fleet';
import { parseArgs } from 'node:util';

export interface EventFigures {
  armCalls: number;
  /** Azure Tables requests per event (median), and how many of them wait one after another. */
  storageCalls: number;
  storageRoundTrips: number;
  /** Median time with an Azure Tables request in flight and no ARM one (part of p50Ms). */
  storageMs: number;
  p50Ms: number;
  p99Ms: number;
  p50WallMs: number;
  p99WallMs: number;
}

export interface SweepFigures {
  resources: number;
  subscriptions: number;
  /** Sweep workers (Function instances), each taking its share of the subscriptions. */
  workers: number;
  seconds: number;
  armCalls: number;
  armCallsLowerBound: number;
  /** Kubernetes API calls of instance-metadata, and their lower bound (2 per cluster when nothing drifts). */
  kubeCalls: number;
  kubeCallsLowerBound: number;
  /** The largest peak RSS of one worker. */
  peakRssMb: number;
  /**
   * A worker's live heap (after a full GC) once its first batch of subscriptions is swept, and at
   * the end: equal when nothing accumulates per subscription (the largest of the workers').
   */
  liveHeapFirstMb: number;
  liveHeapEndMb: number;
  naiveSeconds: number;
  naiveArmCalls: number;
}

export interface BenchResult {
  event: { unrelated: EventFigures; compliant: EventFigures; drifted: EventFigures };
  sweep: SweepFigures[];
  /** `app`: the instance start; one figure per function (start + its first invocation's import); `teamsSdk`. */
  coldStartMs: Record<string, number>;
}

export interface BenchOptions {
  latencyMs: number;
  /** Fleets to sweep: resources over subscriptions. */
  fleets: Array<{ resources: number; subscriptions: number }>;
  /** Timed events per kind (after a few warm-up ones). */
  iterations: number;
  /** Naive GETs actually made per fleet; beyond it the naive time is extrapolated (it is linear). */
  naiveSample: number;
  /** Sweeps of one Function instance at once (host.json queues.batchSize). */
  sweepConcurrency: number;
  /** Sweep workers (child processes, one per Function instance) the subscriptions are spread over. */
  workers: number;
  coldStartRuns: number;
  /** Print the Azure Tables requests of one event of each kind (progress, stderr). */
  trace?: boolean;
  /** Parts to run (`--only`); all by default. */
  only?: BenchPart[];
  /** Where the package for the cold-start figures is built. */
  bundleDir: string;
  progress: (line: string) => void;
}

const WARMUP_EVENTS = 3;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Time during which at least one ARM request was in flight (overlapping requests count once), so
 * "excluding ARM round trips" subtracts exactly the waiting on ARM from an event's wall time.
 */
class ArmBusyClock {
  inFlight = 0;
  private since = 0;
  busyMs = 0;
  readonly policy: PipelinePolicy = {
    name: 'benchArmBusyClock',
    sendRequest: async (request, next) => {
      if (this.inFlight++ === 0) this.since = nowMs();
      try {
        return await next(request);
      } finally {
        if (--this.inFlight === 0) this.busyMs += nowMs() - this.since;
      }
    },
  };
}

/**
 * Azure Tables requests, and "round trips": periods during which at least one was in flight
 * (requests sent together count once) that began while no ARM request was (a read sent alongside an
 * ARM read waits on neither alone), i.e. how many times processing waits on storage in turn.
 */
class StorageCounter {
  constructor(private readonly arm: ArmBusyClock) {}
  private inFlight = 0;
  private since = 0;
  calls = 0;
  roundTrips = 0;
  /** Time with a storage request in flight, counted only for periods that began with no ARM one. */
  busyMs = 0;
  private alone = false;
  /** Method and path of every request while set (`--trace`). */
  trace?: string[];
  readonly policy: PipelinePolicy = {
    name: 'benchStorageCounter',
    sendRequest: async (request, next) => {
      this.calls++;
      if (this.inFlight++ === 0) {
        this.alone = this.arm.inFlight === 0;
        this.since = nowMs();
        if (this.alone) this.roundTrips++;
      }
      this.trace?.push(`${this.inFlight > 1 ? '  ∥ ' : this.arm.inFlight > 0 ? '  ∥ ARM ' : ''}${request.method} ${decodeURIComponent(new URL(request.url).pathname)}`);
      try {
        return await next(request);
      } finally {
        if (--this.inFlight === 0 && this.alone) this.busyMs += nowMs() - this.since;
      }
    },
  };
}

// ---------------------------------------------------------------- the event path

/** A published ResourceWriteSuccess / ResourceDeleteSuccess event pointed at another resource and operation. */
interface PublishedEvent {
  id: string;
  subject: string;
  topic: string;
  data: {
    resourceUri: string;
    operationName: string;
    resourceProvider: string;
    subscriptionId: string;
    authorization?: { scope: string; action: string };
    httpRequest?: { url: string };
  };
}

function armEvent(verb: 'write' | 'delete', operationName: string, resourceId: string, id: string): unknown {
  const published = publishedSample<unknown[]>(
    verb === 'write' ? 'eventgrid/eventgrid-schema/subscription_ResourceWriteSuccess.json' : 'eventgrid/eventgrid-schema/subscription_ResourceDeleteSuccess.json',
  );
  // publishedSample returns a fresh copy: the event is rewritten in place.
  const e = published[0] as PublishedEvent;
  const sub = resourceId.split('/')[2];
  e.id = id;
  e.subject = resourceId;
  e.topic = `/subscriptions/${sub}`;
  e.data.resourceUri = resourceId;
  e.data.operationName = operationName;
  e.data.resourceProvider = operationName.split('/')[0];
  e.data.subscriptionId = sub;
  if (e.data.authorization) {
    e.data.authorization.scope = resourceId;
    e.data.authorization.action = operationName;
  }
  if (e.data.httpRequest) e.data.httpRequest.url = `https://management.azure.com${resourceId}?api-version=2024-01-01`;
  return e;
}

async function benchEvents(options: BenchOptions): Promise<BenchResult['event']> {
  const sandbox = await ArmSandbox.start({ latencyMs: options.latencyMs });
  // As deployed: state and the topology cache in Azure Tables (a real Azurite), filled by one sweep.
  const azurite = await startAzurite();
  try {
    // A subscription of twenty compliant clusters, plus one whose NSG loses NetGuard's rule before each drifted event.
    const sub = benchSubscriptionId(700);
    for (let i = 0; i < 20; i++) seedCompliantCluster(sandbox, sub, i);
    const target = seedCompliantCluster(sandbox, sub, 20);
    const ruleId = `${target.nsgId}/securityRules/aks-netguard-deny-node-ssh`;
    // The same rule is deleted again and again on purpose: the flap guard must not step in here.
    const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: sub, AKS_NETGUARD_FLAP_COUNT: '1000000' });
    const arm = new ArmGateway({ endpoint: sandbox.endpoint, pollIntervalMs: 1 });
    const clock = new ArmBusyClock();
    arm.networkClient(sub).pipeline.addPolicy(clock.policy, { afterPhase: 'Sign' });
    arm.aksClient(sub).pipeline.addPolicy(clock.policy, { afterPhase: 'Sign' });
    const storage = new StorageCounter(clock);
    const store = new TableStateStore((name) => {
      const client = TableClient.fromConnectionString(azurite.connectionString, name, tableClientOptions({ allowInsecureConnection: true }));
      client.pipeline.addPolicy(storage.policy, { afterPhase: 'Sign' });
      return client;
    }, { tablePrefix: 'bench' });
    const runtime: Runtime = { settings, arm, store, engine: new Engine({ arm, settings, store, topologyCache: store }) };
    await runtime.engine.sweep([sub]);

    const storageAccount = `/subscriptions/${sub}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stnetguardbench`;
    const kinds: Record<keyof BenchResult['event'], { event: (n: number) => unknown; before?: () => void; check?: (report: Awaited<ReturnType<typeof processEventBatch>>) => void }> = {
      unrelated: { event: (n) => armEvent('write', 'Microsoft.Storage/storageAccounts/write', storageAccount, `bench-unrelated-${n}`) },
      compliant: {
        event: (n) => armEvent('write', 'Microsoft.Network/networkSecurityGroups/write', target.nsgId, `bench-compliant-${n}`),
        check: (o) => {
          if (!o.report.findings.length || o.report.findings.some((f) => f.status !== 'compliant')) throw new Error(`bench: the compliant event did not end compliant: ${JSON.stringify(o.report.summary)}`);
        },
      },
      drifted: {
        before: () => {
          sandbox.remove(ruleId);
        },
        event: (n) => armEvent('delete', 'Microsoft.Network/networkSecurityGroups/securityRules/delete', ruleId, `bench-drifted-${n}`),
        check: (o) => {
          if (!o.report.findings.some((f) => f.action === 'remediated')) throw new Error(`bench: the drifted event was not remediated: ${JSON.stringify(o.report.findings.map((f) => f.detail))}`);
        },
      },
    };

    const out = {} as BenchResult['event'];
    for (const [kind, spec] of Object.entries(kinds) as Array<[keyof BenchResult['event'], (typeof kinds)[keyof typeof kinds]]>) {
      options.progress(`event path: ${kind} (${options.iterations} events)…`);
      const wall: number[] = [];
      const cpu: number[] = [];
      const calls: number[] = [];
      const storageCalls: number[] = [];
      const storageRounds: number[] = [];
      const storageBusy: number[] = [];
      for (let n = 0; n < WARMUP_EVENTS + options.iterations; n++) {
        spec.before?.();
        const batch = parseEvents(spec.event(n));
        const callsBefore = arm.calls.total;
        const busyBefore = clock.busyMs;
        const storageBefore = { calls: storage.calls, roundTrips: storage.roundTrips, busyMs: storage.busyMs };
        if (options.trace && n === WARMUP_EVENTS) storage.trace = [];
        const started = nowMs();
        const outcome = await processEventBatch(batch, runtime);
        const elapsed = nowMs() - started;
        if (storage.trace) {
          options.progress(`  Azure Tables requests of one ${kind} event:\n    ${storage.trace.join('\n    ')}`);
          storage.trace = undefined;
        }
        spec.check?.(outcome);
        if (n < WARMUP_EVENTS) continue;
        wall.push(elapsed);
        cpu.push(Math.max(0, elapsed - (clock.busyMs - busyBefore)));
        calls.push(arm.calls.total - callsBefore);
        storageCalls.push(storage.calls - storageBefore.calls);
        storageRounds.push(storage.roundTrips - storageBefore.roundTrips);
        storageBusy.push(storage.busyMs - storageBefore.busyMs);
      }
      out[kind] = {
        armCalls: percentile(calls, 0.5),
        storageCalls: percentile(storageCalls, 0.5),
        storageRoundTrips: percentile(storageRounds, 0.5),
        storageMs: round(percentile(storageBusy, 0.5), 2),
        p50Ms: round(percentile(cpu, 0.5), 2),
        p99Ms: round(percentile(cpu, 0.99), 2),
        p50WallMs: round(percentile(wall, 0.5), 2),
        p99WallMs: round(percentile(wall, 0.99), 2),
      };
    }
    return out;
  } finally {
    await sandbox.stop();
    await azurite.stop();
  }
}

// ---------------------------------------------------------------- sweeps

interface SweepChildInput {
  endpoint: string;
  subscriptions: string[];
  concurrency: number;
}
interface SweepChildOutput {
  seconds: number;
  armCalls: number;
  peakRssMb: number;
  /** Heap in use after a full GC: after the first batch of subscriptions, and at the end. */
  liveHeapMb: { first: number; end: number };
  clusters: number;
  errors: string[];
}

function liveHeapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1048576;
}

/**
 * The sweep as the Function App runs it: one sweepSubscription per subscription (the product's
 * sweepOneSubscription), as many at once as one instance takes off the queue. Runs in a child
 * process, so its peak RSS is the sweep's alone.
 */
async function sweepChild(input: SweepChildInput): Promise<SweepChildOutput> {
  const settings = loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: input.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: input.subscriptions.join(',') });
  const arm = new ArmGateway({ endpoint: input.endpoint, pollIntervalMs: 1 });
  const engine = new Engine({ arm, settings });
  const limit = pLimit(input.concurrency);
  const started = nowMs();
  // Like sweepSubscription invocations, each subscription's report is dropped once it is judged
  // (the function stores it and returns): memory must not grow with the subscriptions a worker takes.
  let clusters = 0;
  let done = 0;
  let heapAfterFirstBatch: number | undefined;
  const errors: string[] = [];
  await Promise.all(
    input.subscriptions.map((sub) =>
      limit(async () => {
        const { report } = await sweepOneSubscription(engine, sub);
        clusters += report.summary.resources;
        // What the worker keeps between subscriptions (a full GC after its first batch, and at the end).
        if (++done === input.concurrency) heapAfterFirstBatch = liveHeapMb();
        for (const f of report.findings) if (f.status !== 'compliant' && errors.length < 5) errors.push(`${f.targetId}: ${f.detail}`);
      }),
    ),
  );
  const seconds = (nowMs() - started) / 1000;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const liveHeapEnd = liveHeapMb();
  return { seconds, armCalls: arm.calls.total, peakRssMb, liveHeapMb: { first: heapAfterFirstBatch ?? liveHeapEnd, end: liveHeapEnd }, clusters, errors };
}

function runSweepChild(input: SweepChildInput): Promise<SweepChildOutput> {
  return new Promise((resolve, reject) => {
    // --expose-gc: the live heap is measured after a full collection (RSS alone also counts garbage
    // V8 has not collected yet, which grows with the run's length but is not kept).
    const child = spawn(process.execPath, ['--expose-gc', process.argv[1], '--sweep-child'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench: the sweep child failed (${code}): ${stderr.trim().slice(-500)}`));
      resolve(JSON.parse(stdout) as SweepChildOutput);
    });
    child.stdin.end(JSON.stringify(input));
  });
}

/** The baseline: one GET per resource, one at a time (bench-only; NetGuard never reads this way). */
async function naiveRead(endpoint: string, fleet: SyntheticFleet, sample: number): Promise<{ seconds: number; armCalls: number }> {
  const arm = new ArmGateway({ endpoint, pollIntervalMs: 1 });
  const reads: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < fleet.clusterIds.length; i++) {
    reads.push(() => arm.getCluster(fleet.clusterIds[i]), () => arm.getNsg(fleet.nsgIds[i]), () => arm.getVnet(fleet.vnetIds[i]));
  }
  const measured = Math.min(sample, reads.length);
  const started = nowMs();
  for (const read of reads.slice(0, measured)) await read();
  const seconds = (nowMs() - started) / 1000;
  return { seconds: (seconds * reads.length) / measured, armCalls: reads.length };
}

/** Namespaces every cluster's Kubernetes API answers with, each protected by NetGuard's own policy. */
const BENCH_NAMESPACES = ['default', 'shop', 'billing', 'kube-system'];

async function benchSweep(size: { resources: number; subscriptions: number }, options: BenchOptions): Promise<SweepFigures> {
  const { resources, subscriptions } = size;
  const sandbox = await ArmSandbox.start({ latencyMs: options.latencyMs });
  // instance-metadata reads every cluster's namespaces and NetworkPolicies: one API stand-in answers for all.
  const kube = await KubeSandbox.start();
  try {
    for (const ns of BENCH_NAMESPACES) {
      kube.addNamespace(ns);
      kube.putPolicy(ns, ownPolicyObject(ns) as Parameters<KubeSandbox['putPolicy']>[1]);
    }
    options.progress(`sweep: seeding ${resources} resources over ${subscriptions} subscriptions…`);
    const fleet = seedCompliantFleet(sandbox, resources, subscriptions, kube.url);
    // As the Function App fans out: one queue message per subscription, taken by the instances
    // (here child processes), each sweeping its batch size at once.
    const workers = Math.max(1, Math.min(options.workers, subscriptions));
    const shares = Array.from({ length: workers }, (_, w) => fleet.subscriptions.filter((_, i) => i % workers === w));
    options.progress(`sweep: ${fleet.resources} resources, ${workers} worker(s), ${options.sweepConcurrency} subscriptions at a time each…`);
    const started = nowMs();
    const children = await Promise.all(shares.map((share) => runSweepChild({ endpoint: sandbox.endpoint, subscriptions: share, concurrency: options.sweepConcurrency })));
    const wall = (nowMs() - started) / 1000;
    const errors = children.flatMap((c) => c.errors);
    if (errors.length) throw new Error(`bench: the sweep found non-compliant results on a compliant fleet: ${errors.slice(0, 5).join(' | ')}`);
    const child = {
      // The slowest worker's sweep (process start-up excluded, as a warm instance would have it).
      seconds: Math.min(wall, Math.max(...children.map((c) => c.seconds))),
      armCalls: children.reduce((n, c) => n + c.armCalls, 0),
      peakRssMb: Math.max(...children.map((c) => c.peakRssMb)),
      liveHeapMb: { first: Math.max(...children.map((c) => c.liveHeapMb.first)), end: Math.max(...children.map((c) => c.liveHeapMb.end)) },
    };
    options.progress(`sweep: naive baseline (${Math.min(options.naiveSample, fleet.resources)} GETs measured)…`);
    const naive = await naiveRead(sandbox.endpoint, fleet, options.naiveSample);
    return {
      resources: fleet.resources,
      subscriptions,
      workers,
      seconds: round(child.seconds, 2),
      armCalls: child.armCalls,
      // The list pages, and one listClusterUserCredential per cluster (instance-metadata's kubeconfig).
      armCallsLowerBound: listPagesNeeded(fleet, sandbox.pageSize) + fleet.clusterIds.length,
      kubeCalls: kube.requests.length,
      kubeCallsLowerBound: 2 * fleet.clusterIds.length,
      peakRssMb: round(child.peakRssMb, 1),
      liveHeapFirstMb: round(child.liveHeapMb.first, 1),
      liveHeapEndMb: round(child.liveHeapMb.end, 1),
      naiveSeconds: round(naive.seconds, 1),
      naiveArmCalls: naive.armCalls,
    };
  } finally {
    await kube.stop();
    await sandbox.stop();
  }
}

// ---------------------------------------------------------------- cold start

async function benchColdStart(options: BenchOptions): Promise<Record<string, number>> {
  options.progress('cold start: building the package (as npm run package and azd do)…');
  const pkg = await buildPackage({ outDir: options.bundleDir, zip: false });
  options.progress(`cold start: loading the app as the worker does, ${options.coldStartRuns} run(s) per function…`);
  const cold = measureColdStart(pkg, options.coldStartRuns);
  const missing = pkg.registrations.map((r) => r.name).filter((n) => !cold.registered.includes(n));
  if (missing.length) throw new Error(`bench: the worker would not register ${missing.join(', ')}`);
  const out: Record<string, number> = { app: round(cold.app, 0) };
  for (const [name, ms] of Object.entries(cold.functions)) out[name] = round(ms, 0);
  if (cold.teamsSdk !== undefined) out.teamsSdk = round(cold.teamsSdk, 0);
  return out;
}

export const BENCH_PARTS = ['event', 'sweep', 'cold-start'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

export async function runBenchmark(options: BenchOptions): Promise<Partial<BenchResult>> {
  const want = (part: BenchPart) => !options.only || options.only.includes(part);
  const out: Partial<BenchResult> = {};
  if (want('event')) out.event = await benchEvents(options);
  if (want('sweep')) {
    out.sweep = [];
    for (const size of options.fleets) out.sweep.push(await benchSweep(size, options));
  }
  if (want('cold-start')) out.coldStartMs = await benchColdStart(options);
  return out;
}

// ---------------------------------------------------------------- command line

export function formatTable(r: Partial<BenchResult>, options: Pick<BenchOptions, 'latencyMs' | 'naiveSample' | 'sweepConcurrency'>): string {
  const lines: string[] = [];
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  if (r.event) {
  lines.push(`Event path (ARM round trip ${options.latencyMs} ms)`);
  lines.push(`  ${'event'.padEnd(10)}${pad('ARM calls', 10)}${pad('table calls', 12)}${pad('in turn', 9)}${pad('tables ms', 11)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p50 wall', 10)}${pad('p99 wall', 10)}`);
  for (const [kind, f] of Object.entries(r.event)) {
    lines.push(`  ${kind.padEnd(10)}${pad(f.armCalls, 10)}${pad(f.storageCalls, 12)}${pad(f.storageRoundTrips, 9)}${pad(f.storageMs, 11)}${pad(f.p50Ms, 9)}${pad(f.p99Ms, 9)}${pad(f.p50WallMs, 10)}${pad(f.p99WallMs, 10)}`);
  }
  lines.push('  (p50/p99 exclude the time spent waiting on ARM; wall includes it. Table calls: Azure Tables requests;');
  lines.push('   in turn: how many times the event waits on Azure Tables alone, requests sent together counted once;');
  lines.push('   tables ms: median time of those waits, part of p50)');
  lines.push('');
  }
  if (r.sweep) {
  lines.push(`Sweep (compliant fleets; per worker, ${options.sweepConcurrency} subscriptions at a time, as one Function instance takes them off the queue)`);
  lines.push(`  ${pad('resources', 9)}${pad('subs', 6)}${pad('workers', 9)}${pad('seconds', 9)}${pad('ARM calls', 11)}${pad('lower bound', 13)}${pad('K8s calls', 11)}${pad('lower bound', 13)}${pad('peak RSS MB', 13)}${pad('live heap MB', 14)}${pad('naive s', 9)}${pad('naive calls', 13)}`);
  for (const s of r.sweep) {
    const extrapolated = s.naiveArmCalls > options.naiveSample ? '*' : ' ';
    lines.push(`  ${pad(s.resources, 9)}${pad(s.subscriptions, 6)}${pad(s.workers, 9)}${pad(s.seconds, 9)}${pad(s.armCalls, 11)}${pad(s.armCallsLowerBound, 13)}${pad(s.kubeCalls, 11)}${pad(s.kubeCallsLowerBound, 13)}${pad(s.peakRssMb, 13)}${pad(`${s.liveHeapFirstMb}→${s.liveHeapEndMb}`, 14)}${pad(s.naiveSeconds, 8)}${extrapolated}${pad(s.naiveArmCalls, 13)}`);
  }
  lines.push("  (every cluster's instance-metadata reads its namespaces and NetworkPolicies: one kubeconfig (ARM) and two Kubernetes lists each)");
  lines.push(`  (peak RSS: the largest of one worker's; live heap: after a full GC, after its first batch → at the end; naive: one GET per resource, one at a time; * = ${options.naiveSample} GETs measured, the rest extrapolated linearly)`);
  lines.push('');
  }
  if (r.coldStartMs) {
  lines.push('Cold start of the deployed package (fresh Node process, as the Functions worker loads it, median)');
  for (const [name, ms] of Object.entries(r.coldStartMs)) {
    const what = name === 'app' ? 'instance start: every registration file of package.json main' : name === 'teamsSdk' ? 'added by the first Teams request or notice' : 'instance start + this function\'s first invocation';
    lines.push(`  ${name.padEnd(22)}${pad(ms, 6)} ms   ${what}`);
  }
  }
  return lines.join('\n');
}

export const DEFAULT_FLEETS = '1000,10000,100000/500';

export const BENCH_USAGE = `Usage: npm run bench -- [--json] [--latency MS] [--resources N[/S],…] [--subscriptions N]
                      [--iterations N] [--naive-sample N] [--concurrency N] [--workers N] [--cold-start-runs N]
                      [--only event,sweep,cold-start] [--trace]
  --json             print one JSON object on stdout (progress goes to stderr)
  --latency MS       injected ARM round-trip latency of the sandbox (default 20)
  --resources N,N    fleets to sweep: N resources, or N/S for N over S subscriptions
                     (default ${DEFAULT_FLEETS})
  --subscriptions N  subscriptions a fleet without /S is spread over (default 50)
  --workers N        sweep workers (child processes, as Function instances; default 2)
  --concurrency N    subscriptions one worker sweeps at once (host.json batchSize; default 16)
  --iterations N     timed events per kind (default 200: with fewer, p99 is just the slowest one)
  --only PARTS       run only these parts (default all)
  --trace            print the Azure Tables requests of one event of each kind (stderr)`;

export function parseBenchArgs(argv: string[]): { json: boolean; help: boolean; options: Omit<BenchOptions, 'progress'> } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        latency: { type: 'string' },
        resources: { type: 'string' },
        subscriptions: { type: 'string' },
        iterations: { type: 'string' },
        'naive-sample': { type: 'string' },
        concurrency: { type: 'string' },
        workers: { type: 'string' },
        'cold-start-runs': { type: 'string' },
        trace: { type: 'boolean' },
        only: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new Error(`bench: ${(err as Error).message}\n${BENCH_USAGE}`, { cause: err });
  }
  const num = (name: string, def: number, min = 0) => {
    const v = values[name];
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`bench: --${name} "${String(v)}" must be a number ≥ ${min}`);
    return n;
  };
  const subscriptions = num('subscriptions', 50, 1);
  // N (over --subscriptions) or N/S (over S subscriptions), comma-separated.
  const fleets = String(values.resources ?? DEFAULT_FLEETS).split(',').map((entry) => {
    const [n, s] = entry.trim().split('/');
    return { resources: Number(n), subscriptions: s === undefined ? subscriptions : Number(s) };
  });
  if (fleets.some((f) => !Number.isInteger(f.resources) || f.resources < 3 || !Number.isInteger(f.subscriptions) || f.subscriptions < 1)) {
    throw new Error('bench: --resources takes a comma list of N or N/SUBSCRIPTIONS, whole numbers (N ≥ 3)');
  }
  const only = values.only === undefined ? undefined : String(values.only).split(',').map((s) => s.trim()) as BenchPart[];
  if (only?.some((p) => !BENCH_PARTS.includes(p))) throw new Error(`bench: --only takes a comma list of ${BENCH_PARTS.join(', ')}`);
  return {
    json: values.json === true,
    help: values.help === true,
    options: {
      latencyMs: num('latency', 20),
      fleets,
      iterations: num('iterations', 200, 1),
      naiveSample: num('naive-sample', 500, 1),
      sweepConcurrency: num('concurrency', 16, 1),
      workers: num('workers', Math.min(2, cpus().length), 1),
      coldStartRuns: num('cold-start-runs', 5, 1),
      trace: values.trace === true,
      only,
      bundleDir: path.join(REPO_ROOT, 'node_modules', '.cache', 'aks-netguard', 'bench-package'),
    },
  };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--sweep-child') {
    const input = JSON.parse(fs.readFileSync(0, 'utf8')) as SweepChildInput;
    process.stdout.write(JSON.stringify(await sweepChild(input)));
    return;
  }
  const { json, help, options } = parseBenchArgs(argv);
  if (help) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return;
  }
  const started = nowMs();
  // Progress goes to stderr: with --json, stdout carries the JSON object and nothing else.
  const result = await runBenchmark({ ...options, progress: (line) => process.stderr.write(`[${((nowMs() - started) / 1000).toFixed(1)} s] ${line}\n`) });
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${formatTable(result, options)}\n\nTotal ${((nowMs() - started) / 1000).toFixed(0)} s on ${cpus().length} CPU(s), Node ${process.version}.\n`);
}

if (require.main === module && /(bench|run)\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
