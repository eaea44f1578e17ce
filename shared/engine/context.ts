// What every part of the engine shares: its dependencies, one run's state, and the bookkeeping that
// must be the same on every path — storage failure accounting, the audit trail, notices, findings,
// and the intent record written before each write ("no write without a record").
import { randomUUID } from 'node:crypto';
import type { ArmGateway } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import { describeError } from '../azure/errors';
import { idKey } from '../azure/ids';
import { cacheEntriesOf, type TopologyCacheStore } from '../azure/topologyCache';
import type { Inventory } from '../azure/topology';
import type { Settings } from '../config';
import type { Judgement, PlannedChange } from '../controls/types';
import type { KubeAccessOptions } from '../kube/access';
import type { KubeClient } from '../kube/client';
import type { Notice, NoticeSink } from '../notify/types';
import { StorageUnavailableError, type KnownFindings, type StateStore } from '../store/types';
import { recordFindings } from '../telemetry';
import type { ControlId, Finding, FindingAction, FindingStatus, Mode } from '../types';
import type { DeferredUpdateSink } from './deferred';
import type { OpenIntents } from './openIntents';

export interface EngineDeps {
  arm: ArmGateway;
  settings: Settings;
  /** Absent: stateless (no baselines, no approvals; approve acts as report). */
  store?: StateStore;
  clock?: () => Date;
  /** Progress lines for a person watching (the CLI prints them on stderr). */
  progress?: (line: string) => void;
  /** Warnings for a person (storage trouble, approve acting as report). */
  warn?: (line: string) => void;
  /** The topology kept between runs (Azure Tables): lets an event be judged with one or two reads. */
  topologyCache?: TopologyCacheStore;
  /** Exemptions granted from Teams ("Exempt for 7 days"), with their expiry. */
  exemptions?: ExemptionSource;
  /**
   * Set in the Function App: cluster updates are started and queued for verification instead of
   * awaited (they take minutes). The CLI leaves it unset and waits, with progress.
   */
  deferClusterUpdates?: DeferredUpdateSink;
  /** Where approval requests and remediation notices go (Teams delivery happens elsewhere). */
  notices?: NoticeSink;
  /** Kubernetes API requests (timeout, paging, retries); by default the timeout is AKS_NETGUARD_ARM_TIMEOUT_SECONDS. */
  kube?: KubeAccessOptions;
}

export interface ExemptionSource {
  activeExemption(control: ControlId, targetId: string, now: Date): Promise<{ by: string; until: string } | undefined>;
}

export interface RunOptions {
  /** CLI --mode; `report` is a dry run. */
  cliMode?: Mode;
  /** Who last changed the resources (from an event's claims), for approval requests and details. */
  changedBy?: string;
  /** Names the run in the audit trail (an event's id); a fresh id by default. */
  runId?: string;
}

/** What is left for a person after NetGuard made the part of a fix it may make alone. */
export interface RestForPerson {
  judgement: Judgement;
  plan: PlannedChange;
  reason: string;
  /** What NetGuard did fix first (verified). */
  fixed: string;
}

/** One planned action on one target, shared by every cluster whose finding points at it. */
export interface TargetOutcome {
  action: FindingAction;
  status?: FindingStatus;
  detail: string;
  /** A cluster update was started and queued for verification (functions). */
  started?: boolean;
  /** Part of the fix was made and verified; the rest needs a person (see approvals.ts). */
  rest?: RestForPerson;
}

export class Run {
  constructor(
    /** The engine's storage failure count when the run began (see EngineContext.storageFailures). */
    readonly storageFailuresAtStart: number,
    readonly id: string = randomUUID(),
  ) {}
  /** Set when a person approved the fix (audit "actor"). */
  actor?: string;
  changedBy?: string;
  writes = 0;
  warnedNoStore = false;
  /** First retryable failure of the run (events are redelivered for it). */
  retryable?: Error;
  readonly outcomes = new Map<string, Promise<TargetOutcome>>();
  /** Earlier runs' intents without an outcome, read once per run (see openIntents.ts). */
  openIntents?: OpenIntents;
  /** Per control and target: the completion of such intents (two clusters can share one NSG). */
  readonly completions = new Map<string, Promise<TargetOutcome | undefined>>();
  /** Flap histories read ahead (see prefetch.ts), by control|target. */
  readonly flapHistory = new Map<string, Promise<Array<{ at: string; changedBy?: string }>>>();
  readonly findings: Finding[] = [];
  clusters = 0;
  /** Kubernetes clients opened for this run, by cluster (lower-cased id): reads and writes share one. */
  readonly kubeClients = new Map<string, KubeClient>();

  /** Frees a cluster's Kubernetes client once its controls are judged. */
  closeKube(cluster?: ArmManagedCluster): void {
    for (const [key, client] of this.kubeClients) {
      if (cluster && key !== idKey(cluster.id)) continue;
      client.close();
      this.kubeClients.delete(key);
    }
  }
}

export function lowerFirst(s: string): string {
  return s ? s[0].toLowerCase() + s.slice(1) : s;
}

/** The engine's shared state and bookkeeping, handed to each of its modules. */
export class EngineContext {
  readonly clock: () => Date;
  /**
   * Storage calls that failed in this engine's lifetime, and the last one. A run that sees the count
   * grow makes no further write (no write without a record) and reports the failure, so the CLI
   * exits 1 and an event is retried. Counted per engine, not per run: runs that overlap share one
   * storage account, and a failure seen by one is a reason for the other to stop writing too.
   */
  private storageFailures = 0;
  private lastStorageFailure?: Error;
  /** Intents this engine's runs are still carrying out: not "open" to a concurrent run. */
  readonly inFlight = new Set<string>();

  constructor(readonly deps: EngineDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  newRun(runId?: string): Run {
    return new Run(this.storageFailures, runId);
  }

  storageFailed(err: unknown): void {
    this.storageFailures++;
    this.lastStorageFailure = err instanceof Error ? err : new Error(String(err));
  }

  storageFailureSince(run: Run): Error | undefined {
    return this.storageFailures > run.storageFailuresAtStart ? this.lastStorageFailure : undefined;
  }

  /**
   * No write without a record: with storage configured, the intent (control, cluster, target, the
   * planned change, actor, run) is written before every write, and the outcome row refers to it.
   * If it cannot be written, or storage already failed during this run, no write is made. Without
   * storage (a stateless CLI run, as DESIGN.md allows) there is nothing to record into.
   */
  async recordIntent(run: Run, judgement: Judgement, plan: PlannedChange): Promise<string | undefined> {
    const store = this.deps.store;
    if (!store) return undefined;
    const earlier = this.storageFailureSince(run);
    if (earlier) {
      throw new StorageUnavailableError(`Storage failed earlier in this run, so NetGuard made no change it could not record: ${describeError(earlier)}`, { cause: earlier });
    }
    const intent = randomUUID();
    try {
      await store.audit({
        at: this.clock().toISOString(),
        control: judgement.control,
        clusterId: judgement.clusterId,
        targetId: judgement.targetId,
        event: 'intent',
        before: plan.before,
        after: plan.after,
        actor: run.actor ?? 'netguard (auto)',
        mode: run.actor ? 'approve' : 'auto',
        detail: plan.summary,
        intent,
        runId: run.id,
        change: plan,
      });
    } catch (err) {
      this.storageFailed(err);
      throw new StorageUnavailableError(`Storage was unavailable, so NetGuard made no change (it writes nothing it cannot record): ${describeError(err)}`, { cause: err });
    }
    this.inFlight.add(intent);
    return intent;
  }

  /** An outcome row for intents whose write did not (fully) happen, so no later run takes them for its own. */
  async closeIntents(run: Run, judgement: Judgement, intents: string[], event: string, detail: string): Promise<void> {
    if (!intents.length) return;
    await this.audit({ control: judgement.control, clusterId: judgement.clusterId, targetId: judgement.targetId, event, actor: run.actor ?? 'netguard (auto)', detail, intent: intents.join(','), runId: run.id });
  }

  /** Keeps the cluster ↔ subnet ↔ NSG topology for the event path (a failure only costs later reads). */
  async refreshCache(subscriptionId: string, inventory: Inventory): Promise<void> {
    if (!this.deps.topologyCache) return;
    try {
      await this.deps.topologyCache.replaceTopology(subscriptionId, cacheEntriesOf(inventory), this.clock());
    } catch (err) {
      this.deps.warn?.(`Could not save the topology of ${subscriptionId}: ${describeError(err)}`);
    }
  }

  async record(findings: Finding[], known?: Promise<KnownFindings | undefined>): Promise<void> {
    recordFindings(findings); // metrics: drift found, remediated (no-op without a telemetry SDK)
    if (!this.deps.store || findings.length === 0) return;
    try {
      await this.deps.store.recordFindings(findings, this.clock(), await known);
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not record ${findings.length} finding(s): ${describeError(err)}`);
    }
  }

  /** False when the notice could not be queued (a storage failure of the run). */
  async notify(notice: Notice): Promise<boolean> {
    if (!this.deps.notices) return true;
    try {
      await this.deps.notices.enqueue(notice);
      return true;
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not queue the ${notice.kind} notice: ${describeError(err)}`);
      return false;
    }
  }

  async audit(entry: Omit<Parameters<StateStore['audit']>[0], 'at'>): Promise<void> {
    if (!this.deps.store) return;
    try {
      await this.deps.store.audit({ ...entry, at: this.clock().toISOString() });
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not write the audit row for ${entry.targetId}: ${describeError(err)}`);
    }
  }
}
