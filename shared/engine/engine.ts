// The reconcile engine: observe → evaluate → mode/exemption → act / ask / report → verify → record.
// An event is only a hint of which resources to look at; every run re-reads live state and acts only
// on the difference, so running twice changes nothing.
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { ArmGateway, StartedOperation } from '../azure/arm';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule } from '../azure/armTypes';
import { ArmError, ConcurrencyError, VerificationError, classifyError, describeError } from '../azure/errors';
import { idKey, sameId, subscriptionOf } from '../azure/ids';
import { TopologyIndex, type Inventory } from '../azure/topology';
import type { Settings } from '../config';
import { knownGoodRanges } from '../controls/apiAuthorizedRanges';
import { CONTROLS } from '../controls/index';
import type { ClusterObservation, ClusterPropertyChange, Control, Judgement, PlannedChange } from '../controls/types';
import type { Notice, NoticeSink } from '../notify/types';
import { StorageUnavailableError, type ApprovalRecord, type StateStore } from '../store/types';
import { summarize, type ControlId, type Finding, type FindingAction, type FindingStatus, type Mode, type RunReport } from '../types';
import { recordFindings } from '../telemetry';
import { resolveMode } from './modes';
import { affectedResourceOf, observeFromCache, type AffectedResource, type Observed } from './observe';
import { VERIFY_DELAY_SECONDS, type DeferredUpdateSink, type PendingClusterUpdate } from './deferred';
import { cacheEntriesOf, type TopologyCacheStore } from '../azure/topologyCache';
import { StoreError } from '../store/tables';
import { WriteRefusedError, assertWriteAllowed } from './writeGate';
import { OpenIntents } from './openIntents';

/** Subscriptions read at once during a sweep. */
const SWEEP_READ_CONCURRENCY = 4;
/** How many times a write is retried after a 412 (each time after re-reading and re-judging). */
const MAX_CONFLICT_ROUNDS = 3;
/** How many successive fixes one target may need in one run (e.g. narrow an Allow, then add the Deny). */
const MAX_FIX_STEPS = 3;

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
  /**
   * Sweep-only passes over a subscription's clusters, run after the controls (instance-metadata,
   * which reads Kubernetes objects that no event reports). Their findings join the report.
   */
  sweepPasses?: Array<(clusters: ArmManagedCluster[], options: RunOptions) => Promise<Finding[]>>;
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

/** One planned action on one target, shared by every cluster whose finding points at it. */
interface TargetOutcome {
  action: FindingAction;
  status?: FindingStatus;
  detail: string;
  /** A cluster update was started and queued for verification (functions). */
  started?: boolean;
}

class Run {
  constructor(
    /** The engine's storage failure count when the run began (see Engine.storageFailures). */
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
  readonly findings: Finding[] = [];
  clusters = 0;
}

export class Engine {
  private readonly clock: () => Date;
  /**
   * Storage calls that failed in this engine's lifetime, and the last one. A run that sees the count
   * grow makes no further write (no write without a record) and reports the failure, so the CLI
   * exits 1 and an event is retried. Counted per engine, not per run: runs that overlap share one
   * storage account, and a failure seen by one is a reason for the other to stop writing too.
   */
  private storageFailures = 0;
  private lastStorageFailure?: Error;
  /** Intents this engine's runs are still carrying out: not "open" to a concurrent run. */
  private readonly inFlight = new Set<string>();

  constructor(private readonly deps: EngineDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Sweeps whole subscriptions; one subscription's failure becomes error findings, never an abort. */
  async sweep(subscriptionIds: string[], options: RunOptions = {}): Promise<RunReport> {
    return (await this.sweepDetailed(subscriptionIds, options)).report;
  }

  /** sweep(), plus the first retryable failure (throttling, 5xx), so a queued sweep can be retried. */
  async sweepDetailed(subscriptionIds: string[], options: RunOptions = {}): Promise<{ report: RunReport; retryable?: Error; storageFailure?: Error }> {
    const run = new Run(this.storageFailures, options.runId);
    // Reads are latency-bound: a few subscriptions are read ahead while one is judged (bounded, so
    // memory does not grow with the estate); judging stays in order, so the report is stable.
    const limit = pLimit(SWEEP_READ_CONCURRENCY);
    const reads = new Map<number, Promise<Inventory>>();
    const readAhead = (i: number) => {
      if (i < subscriptionIds.length && !reads.has(i)) {
        const p = limit(() => this.deps.arm.readInventory(subscriptionIds[i]));
        p.catch(() => undefined); // handled when awaited below
        reads.set(i, p);
      }
    };
    for (let i = 0; i < subscriptionIds.length; i++) {
      const sub = subscriptionIds[i];
      for (let k = i; k < i + SWEEP_READ_CONCURRENCY; k++) readAhead(k);
      this.deps.progress?.(`Reading subscription ${sub} (${i + 1}/${subscriptionIds.length})…`);
      let inventory: Inventory;
      try {
        inventory = await reads.get(i)!;
        reads.delete(i);
      } catch (err) {
        reads.delete(i);
        if (classifyError(err) === 'retryable') run.retryable ??= err instanceof Error ? err : new Error(String(err));
        this.failScope(run, `/subscriptions/${sub}`, `Could not list clusters and networks of subscription ${sub}: ${describeError(err)}`);
        continue;
      }
      await this.refreshCache(sub, inventory);
      this.deps.progress?.(`Judging ${inventory.clusters.length} cluster(s) in ${sub}…`);
      await this.judgeClusters(run, inventory, inventory.clusters, options);
      for (const pass of this.deps.sweepPasses ?? []) {
        const extra = await pass(inventory.clusters, options);
        run.findings.push(...extra);
        await this.record(extra);
      }
    }
    return this.outcomeOf(run);
  }

  /**
   * Reconciles what one resource can affect: a cluster (every control), or an NSG, subnet or VNet
   * (node-ssh-deny of the clusters behind it). Unknown resources lead to an empty report.
   */
  async reconcile(resource: string | AffectedResource, options: RunOptions = {}): Promise<RunReport> {
    return (await this.reconcileDetailed(resource, options)).report;
  }

  /** reconcile(), plus the first retryable failure (a 5xx or 429 on a write) so an event can be redelivered. */
  async reconcileDetailed(resource: string | AffectedResource, options: RunOptions = {}): Promise<{ report: RunReport; retryable?: Error; storageFailure?: Error }> {
    const run = new Run(this.storageFailures, options.runId);
    // An event's route names the resource and its kind; a bare id (CLI, scripts) is classified here.
    const what = typeof resource === 'string' ? affectedResourceOf(resource) : resource;
    const resourceId = typeof resource === 'string' ? resource : resource.id;
    const cache = this.deps.topologyCache;
    let fromCache: Observed | undefined;
    if (cache && what) {
      try {
        fromCache = await observeFromCache(this.deps.arm, cache, what);
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        this.deps.warn?.(`The topology cache could not answer, reading the whole subscription: ${describeError(err)}`);
      }
    }
    if (fromCache) {
      const { inventory, clusters, onlyNodeSsh, targets, topology } = fromCache;
      await this.judgeClusters(run, inventory, clusters, options, onlyNodeSsh ? ['node-ssh-deny'] : undefined, topology, targets);
      return this.outcomeOf(run);
    }
    const sub = subscriptionOf(resourceId);
    const inventory = await this.deps.arm.readInventory(sub);
    await this.refreshCache(sub, inventory);
    const topology = new TopologyIndex(inventory);
    const scope = clustersAffectedBy(what, topology);
    await this.judgeClusters(run, inventory, scope.clusters, options, scope.onlyNodeSsh ? ['node-ssh-deny'] : undefined, topology);
    return this.outcomeOf(run);
  }

  /**
   * The report, the first retryable failure, and the storage failure that lost records, if any: a
   * run whose records were lost is retried (an event) or ends with exit 1 (the CLI).
   */
  private outcomeOf(run: Run): { report: RunReport; retryable?: Error; storageFailure?: Error } {
    const storageFailure = this.storageFailureSince(run);
    return { report: this.report(run), retryable: run.retryable ?? storageFailure, storageFailure };
  }

  private storageFailed(err: unknown): void {
    this.storageFailures++;
    this.lastStorageFailure = err instanceof Error ? err : new Error(String(err));
  }

  private storageFailureSince(run: Run): Error | undefined {
    return this.storageFailures > run.storageFailuresAtStart ? this.lastStorageFailure : undefined;
  }

  /**
   * No write without a record: with storage configured, the intent (control, cluster, target, the
   * planned change, actor, run) is written before every ARM write, and the outcome row refers to it.
   * If it cannot be written, or storage already failed during this run, no write is made. Without
   * storage (a stateless CLI run, as DESIGN.md allows) there is nothing to record into.
   */
  private async recordIntent(run: Run, judgement: Judgement, plan: PlannedChange): Promise<string | undefined> {
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

  /**
   * A target judged compliant may be compliant because of NetGuard's own earlier write whose outcome
   * was never recorded (storage failed after Azure applied it). Such intents are completed now —
   * audited `remediated` naming them, announced, counted for the flap guard — and the finding is
   * `remediated`, not `compliant`. Undefined when there is nothing to complete.
   */
  private completeOpenIntents(run: Run, judgement: Judgement, observation: ClusterObservation): Promise<TargetOutcome | undefined> {
    const store = this.deps.store;
    if (!store?.openIntents) return Promise.resolve(undefined);
    const key = `${judgement.control}|${idKey(judgement.targetId)}`;
    let completion = run.completions.get(key);
    if (!completion) {
      completion = (async (): Promise<TargetOutcome | undefined> => {
        run.openIntents ??= new OpenIntents(store, this.clock(), run.id, this.inFlight);
        let found: Awaited<ReturnType<OpenIntents['take']>>;
        try {
          found = await run.openIntents.take(judgement, observation);
        } catch (err) {
          // Unknown whether this "compliant" is NetGuard's own unrecorded fix: the run is retried.
          this.storageFailed(err);
          this.deps.warn?.(`Could not look for unfinished fixes of ${judgement.targetId}: ${describeError(err)}`);
          return undefined;
        }
        const { held, answered } = found;
        if (!held.length) {
          // An earlier delivery of this event fixed it and recorded the fix, but was answered with a
          // retry (storage failed during it): the redelivery gives the same answer, announcing nothing twice.
          if (answered) return { action: 'remediated', detail: `${judgement.detail} NetGuard fixed it: ${answered.detail ?? 'see the audit'} (an earlier delivery of this event, at ${answered.at}).` };
          return undefined;
        }
        const first = held[0];
        const last = held[held.length - 1];
        const steps = held.map((h) => h.change!.summary).join(' Then: ');
        const detail = `${judgement.detail} NetGuard fixed it: ${steps} (the write was made by an earlier run, ${first.runId ?? 'unnamed'}, whose record of the outcome was lost; completed now).`;
        const actor = last.actor && last.actor !== 'netguard (auto)' ? last.actor : undefined;
        await this.announceFix({ judgement, detail, before: first.before, change: last.change!, steps, actor, intent: held.map((h) => h.intent).join(','), runId: run.id });
        return { action: 'remediated', detail };
      })();
      run.completions.set(key, completion);
    }
    return completion;
  }

  /** An outcome row for intents whose write did not (fully) happen, so no later run takes them for its own. */
  private async closeIntents(run: Run, judgement: Judgement, intents: string[], event: string, detail: string): Promise<void> {
    if (!intents.length) return;
    await this.audit({ control: judgement.control, clusterId: judgement.clusterId, targetId: judgement.targetId, event, actor: run.actor ?? 'netguard (auto)', detail, intent: intents.join(','), runId: run.id });
  }

  /** Keeps the cluster ↔ subnet ↔ NSG topology for the event path (a failure only costs later reads). */
  private async refreshCache(subscriptionId: string, inventory: Inventory): Promise<void> {
    if (!this.deps.topologyCache) return;
    try {
      await this.deps.topologyCache.replaceTopology(subscriptionId, cacheEntriesOf(inventory), this.clock());
    } catch (err) {
      this.deps.warn?.(`Could not save the topology of ${subscriptionId}: ${describeError(err)}`);
    }
  }

  private report(run: Run): RunReport {
    return { findings: run.findings, summary: summarize(run.findings, run.clusters) };
  }

  private failScope(run: Run, scopeId: string, detail: string): void {
    for (const control of CONTROLS) {
      run.findings.push({ control: control.id, resourceId: scopeId, targetId: scopeId, status: 'error', action: 'none', detail });
    }
  }

  private async judgeClusters(
    run: Run,
    inventory: Inventory,
    clusters: ArmManagedCluster[],
    options: RunOptions,
    onlyControls?: ControlId[],
    topology = new TopologyIndex(inventory),
    onlyTargets?: Set<string>,
  ): Promise<void> {
    const judged: Finding[] = [];
    for (const cluster of clusters) {
      run.clusters++;
      let baseline: string[] | undefined;
      try {
        // Only api-authorized-ranges uses the baseline: a network event does not pay for reading it.
        if (!onlyControls || onlyControls.includes('api-authorized-ranges')) baseline = await this.deps.store?.getBaseline(cluster.id);
      } catch (err) {
        this.deps.warn?.(`Could not read the saved authorized IP ranges of ${cluster.id}: ${describeError(err)}`);
      }
      const observation: ClusterObservation = {
        cluster,
        topology,
        baselineAuthorizedRanges: baseline,
        fallbackAuthorizedRanges: this.deps.settings.authorizedIpRanges,
      };
      for (const control of CONTROLS) {
        if (onlyControls && !onlyControls.includes(control.id)) continue;
        const findings = await this.judgeControl(run, control, observation, options, onlyTargets);
        run.findings.push(...findings);
        judged.push(...findings);
      }
    }
    await this.record(judged);
  }

  private async record(findings: Finding[]): Promise<void> {
    recordFindings(findings); // metrics: drift found, remediated (no-op without a telemetry SDK)
    if (!this.deps.store || findings.length === 0) return;
    try {
      await this.deps.store.recordFindings(findings, this.clock());
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not record ${findings.length} finding(s): ${describeError(err)}`);
    }
  }

  private async judgeControl(
    run: Run,
    control: Control,
    observation: ClusterObservation,
    options: RunOptions,
    onlyTargets?: Set<string>,
  ): Promise<Finding[]> {
    const clusterId = observation.cluster.id;
    let judgements: Judgement[];
    try {
      judgements = control.evaluate(observation);
    } catch (err) {
      return [{ control: control.id, resourceId: clusterId, targetId: clusterId, status: 'error', action: 'none', detail: `Could not judge: ${describeError(err)}` }];
    }
    const out: Finding[] = [];
    for (const judgement of judgements) {
      // An event about one NSG or subnet concerns only its own judgements (the rest was not re-read).
      if (onlyTargets && !onlyTargets.has(idKey(judgement.targetId))) continue;
      const base = { control: control.id, resourceId: clusterId, targetId: judgement.targetId };
      const granted = await this.grantedExemption(control.id, judgement.targetId);
      if (granted) {
        out.push({ ...base, status: 'exempt', action: 'skipped', detail: `${judgement.detail} Exempted in Teams by ${granted.by} until ${granted.until}.` });
        continue;
      }
      const resolved = resolveMode({ control, judgement, settings: this.deps.settings, cliMode: options.cliMode });
      const notes = resolved.notes.length ? ` ${resolved.notes.join(' ')}` : '';
      if (resolved.exempt) {
        out.push({ ...base, status: 'exempt', action: 'skipped', detail: `${judgement.detail}${notes}` });
        continue;
      }
      if (judgement.compliant) {
        const completed = await this.completeOpenIntents(run, judgement, observation);
        if (completed) {
          out.push({ ...base, status: 'drift', action: completed.action, detail: `${completed.detail}${notes}` });
          continue;
        }
        await this.saveBaseline(control.id, observation.cluster);
        out.push({ ...base, status: 'compliant', action: 'none', detail: `${judgement.detail}${notes}` });
        continue;
      }
      const key = `${control.id}|${idKey(judgement.targetId)}`;
      let outcome = run.outcomes.get(key);
      if (!outcome) {
        outcome = this.handleDrift(run, control, judgement, observation, resolved.mode, options).catch((err) => {
          if (err instanceof StoreError) this.storageFailed(err); // e.g. the approval could not be stored
          if (classifyError(err) === 'retryable') run.retryable ??= err instanceof Error ? err : new Error(String(err));
          return {
          action: 'none' as const,
          status: 'error' as const,
          detail: `${judgement.detail} NetGuard could not repair it: ${describeError(err)}`,
          };
        });
        run.outcomes.set(key, outcome);
      }
      const o = await outcome;
      out.push({ ...base, status: o.status ?? 'drift', action: o.action, detail: `${o.detail}${notes}` });
    }
    return out;
  }

  private async grantedExemption(control: ControlId, targetId: string): Promise<{ by: string; until: string } | undefined> {
    if (!this.deps.exemptions) return undefined;
    try {
      return await this.deps.exemptions.activeExemption(control, targetId, this.clock());
    } catch (err) {
      // Unknown exemptions: nothing may be changed in this run (the next intent refuses).
      this.storageFailed(err);
      this.deps.warn?.(`Could not read the exemptions of ${targetId}: ${describeError(err)}`);
      return undefined;
    }
  }

  private async saveBaseline(control: ControlId, cluster: ArmManagedCluster): Promise<void> {
    if (control !== 'api-authorized-ranges' || !this.deps.store) return;
    const ranges = knownGoodRanges(cluster);
    if (!ranges) return;
    try {
      const saved = await this.deps.store.getBaseline(cluster.id);
      if (saved && sameList(saved, ranges)) return;
      await this.deps.store.putBaseline(cluster.id, ranges, this.clock());
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not save the authorized IP ranges of ${cluster.id}: ${describeError(err)}`);
    }
  }

  private async handleDrift(
    run: Run,
    control: Control,
    judgement: Judgement,
    observation: ClusterObservation,
    mode: Mode,
    options: RunOptions,
  ): Promise<TargetOutcome> {
    const plan = control.plan(judgement, observation);
    if (plan.kind === 'none') return { action: 'reported', detail: `${judgement.detail} ${plan.reason}` };

    let personReason: string | undefined;
    if (mode === 'report') return { action: 'reported', detail: `${judgement.detail} Mode report: NetGuard would ${lowerFirst(plan.summary)}` };
    if (mode === 'approve') personReason = 'the control is in approve mode';
    else if (plan.needsPerson) personReason = 'the fix changes an existing Allow rule, which needs a person';
    else if (run.writes >= this.deps.settings.maxWritesPerRun) {
      personReason = `this run reached AKS_NETGUARD_MAX_WRITES_PER_RUN (${this.deps.settings.maxWritesPerRun})`;
    }
    personReason ??= await this.flapping(control.id, judgement.targetId);
    if (personReason) return this.requestApproval(run, control, judgement, plan, personReason, options);
    run.changedBy = options.changedBy;
    return this.remediate(run, control, judgement, observation, plan);
  }

  private async requestApproval(
    run: Run,
    control: Control,
    judgement: Judgement,
    plan: PlannedChange,
    reason: string,
    options: RunOptions,
  ): Promise<TargetOutcome> {
    const store = this.deps.store;
    if (!store) {
      if (!run.warnedNoStore) {
        run.warnedNoStore = true;
        this.deps.warn?.('No AzureWebJobsStorage: approvals cannot be stored, so approve acts as report.');
      }
      return { action: 'reported', detail: `${judgement.detail} Needs approval (${reason}), but without storage approve acts as report: would ${lowerFirst(plan.summary)}` };
    }
    const now = this.clock();
    const { created, approval } = await store.requestApproval({
      control: control.id,
      clusterId: judgement.clusterId,
      targetId: judgement.targetId,
      detail: judgement.detail,
      change: plan,
      reason,
      requestedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.deps.settings.approvalTtlHours * 3600_000).toISOString(),
      changedBy: options.changedBy,
    });
    if (created) {
      await this.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'approval-requested', after: plan, actor: 'netguard', detail: reason });
      await this.notify({ kind: 'approval-requested', approval });
    }
    const since = created ? '' : ` (waiting since ${approval.requestedAt})`;
    return { action: 'approval-requested', detail: `${judgement.detail} Waiting for approval${since} because ${reason}: ${plan.summary}` };
  }

  /** Applies, re-reads, re-judges. On 412: re-read, re-judge, re-plan, try again (bounded). */
  private async remediate(
    run: Run,
    control: Control,
    judgement: Judgement,
    observation: ClusterObservation,
    first: PlannedChange,
    approved = false,
  ): Promise<TargetOutcome> {
    const intents: string[] = [];
    try {
      return await this.remediateSteps(run, control, judgement, observation, first, approved, intents);
    } finally {
      // Outcome recorded (or lost): from now on a later run may find these intents open.
      for (const id of intents) this.inFlight.delete(id);
    }
  }

  private async remediateSteps(
    run: Run,
    control: Control,
    judgement: Judgement,
    observation: ClusterObservation,
    first: PlannedChange,
    approved: boolean,
    intents: string[],
  ): Promise<TargetOutcome> {
    let plan: PlannedChange = first;
    let current = judgement;
    let conflicts = 0;
    const applied: string[] = [];
    for (let step = 0; step < MAX_FIX_STEPS + MAX_CONFLICT_ROUNDS; step++) {
      let readBack: ArmSecurityRule | undefined;
      // No write without a record (throws, and nothing is written, when storage cannot take it).
      const intent = await this.recordIntent(run, current, plan);
      if (intent) intents.push(intent);
      try {
        this.deps.progress?.(`${control.id}: ${plan.summary}`);
        run.writes++;
        const defer = this.deps.deferClusterUpdates;
        if (plan.kind === 'cluster-property' && defer) {
          const operation = await this.startClusterUpdate(plan, observation);
          const pending: PendingClusterUpdate = {
            control: control.id,
            clusterId: judgement.clusterId,
            targetId: judgement.targetId,
            operation,
            change: plan,
            detail: judgement.detail,
            actor: run.actor,
            changedBy: run.changedBy,
            startedAt: this.clock().toISOString(),
            attempt: 1,
            intent,
          };
          await defer.enqueue(pending, (operation.retryAfterMs ?? VERIFY_DELAY_SECONDS * 1000) / 1000);
          await this.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'update-started', before: plan.before, after: plan.after, actor: run.actor ?? 'netguard (auto)', detail: plan.summary, intent, runId: run.id });
          return {
            action: 'reported',
            started: true,
            detail: `${judgement.detail} NetGuard started the fix (${lowerFirst(plan.summary)}); AKS takes minutes, so it verifies the update when it ends and reports it remediated then.`,
          };
        }
        readBack = await this.apply(plan, observation);
        applied.push(plan.summary);
      } catch (err) {
        if (err instanceof ArmError && err.status === 412) {
          // Azure refused this write (the resource changed since it was read): it is not in place.
          if (intent) await this.closeIntents(run, current, [intent], 'write-conflict', `Azure refused the write with 412 (the resource changed since NetGuard read it): ${plan.summary}`);
          if (++conflicts > MAX_CONFLICT_ROUNDS) throw new ConcurrencyError(`${judgement.targetId} kept changing under NetGuard (412 ${conflicts} times).`);
        } else {
          await this.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: err instanceof WriteRefusedError ? 'write-refused' : 'write-failed', before: plan.before, after: plan.after, actor: 'netguard (auto)', detail: describeError(err), intent, runId: run.id });
          throw err;
        }
      }
      // Verify (or, after a 412, catch up): re-read the target and judge it again. A rule write is
      // verified on the rule as Azure returns it after the write, in the NSG as read.
      const refreshed = readBack && plan.kind === 'security-rule' ? withRule(observation, plan.nsgId, readBack) : await this.reobserve(observation, current);
      const again = control.evaluate(refreshed).find((j) => sameId(j.targetId, judgement.targetId));
      if (!again || again.compliant) {
        if (applied.length === 0) return { action: 'none', status: 'compliant', detail: `${judgement.detail} It was repaired by someone else before NetGuard's write.` };
        const detail = `${judgement.detail} NetGuard fixed it: ${applied.join(' Then: ')}`;
        await this.announceFix({ judgement, detail, before: first.before, change: plan, steps: applied.join(' Then: '), actor: run.actor, changedBy: run.changedBy, intent: intents.join(','), runId: run.id });
        return { action: 'remediated', detail };
      }
      const next = control.plan(again, refreshed);
      if (next.kind === 'none') {
        // (Intents refused with 412 were closed already; only writes that took are left.)
        if (applied.length > 0) await this.closeIntents(run, judgement, intents, 'verify-failed', `The writes did not make it compliant: ${again.detail}`);
        throw new VerificationError(`the write did not make it compliant: ${again.detail} ${next.reason}`);
      }
      if (applied.length > 0 && sameChange(next, plan)) {
        await this.audit({ control: control.id, clusterId: judgement.clusterId, targetId: judgement.targetId, event: 'verify-failed', after: plan.after, actor: 'netguard (auto)', detail: again.detail, intent: intents.join(','), runId: run.id });
        throw new VerificationError(`Azure accepted the write but re-reading shows it did not take: ${again.detail}`);
      }
      if (next.needsPerson && !approved) {
        if (applied.length > 0) await this.closeIntents(run, judgement, intents, 'partly-fixed', `NetGuard made ${applied.length} of the writes (${applied.join(' Then: ')}); the rest changes an existing Allow rule and waits for a person.`);
        return this.requestApproval(run, control, again, next, 'the fix changes an existing Allow rule, which needs a person', {});
      }
      plan = next;
      current = again;
      observation = refreshed;
    }
    throw new ConcurrencyError(`${judgement.targetId} did not settle after ${MAX_FIX_STEPS} fixes.`);
  }

  /** Applies a change; for a rule, returns the rule as Azure reads it back after the write. */
  private async apply(plan: PlannedChange, observation: ClusterObservation): Promise<ArmSecurityRule | undefined> {
    const arm = this.deps.arm;
    if (plan.kind === 'security-rule') {
      // The write gate: a rule write that would open any flow is refused here, whoever planned it.
      assertWriteAllowed(plan, { nsg: observation.topology.nsg(plan.nsgId), topology: observation.topology });
      return arm.putSecurityRule(plan.nsgId, plan.ruleName, plan.after, plan.ifMatch);
    }
    const op = await this.startClusterUpdate(plan, observation);
    const name = observation.cluster.name;
    this.deps.progress?.(`Waiting for ${name} to finish updating (AKS updates take minutes)…`);
    await arm.waitForOperation(op, (s) => this.deps.progress?.(`  ${name}: ${s}`));
    return undefined;
  }

  /**
   * A cluster goes back exactly as it was read, with only the drifted property changed, and If-Match
   * on the ETag that was read. A list answer without an ETag is re-read first.
   */
  private async startClusterUpdate(plan: ClusterPropertyChange, observation: ClusterObservation): Promise<StartedOperation> {
    const arm = this.deps.arm;
    let cluster: ArmManagedCluster = structuredClone(observation.cluster);
    let ifMatch = plan.ifMatch ?? cluster.eTag;
    if (!ifMatch) {
      const fresh = await arm.getCluster(plan.clusterId);
      cluster = fresh.cluster;
      ifMatch = fresh.etag;
    }
    // The write gate, against the cluster that is about to be sent back (every cluster write comes here).
    assertWriteAllowed(plan, { cluster });
    setPath(cluster, plan.path, plan.after);
    // The change is named so that a lost answer can be settled by re-reading (see ArmGateway).
    return arm.startClusterUpdate(cluster, ifMatch, { path: plan.path, value: plan.after });
  }

  /**
   * A later look at a started cluster update (the verify queue): still running, or re-read, re-judged
   * and recorded — remediated only when the control now finds the cluster compliant.
   */
  async verifyClusterUpdate(update: PendingClusterUpdate): Promise<{ state: 'pending' | 'remediated' | 'failed'; detail: string; retryAfterMs?: number }> {
    const base = { control: update.control, clusterId: update.clusterId, targetId: update.targetId };
    const actor = update.actor ?? 'netguard (auto)';
    const run = new Run(this.storageFailures);
    const fail = async (detail: string, event: string) => {
      await this.audit({ ...base, event, after: update.change.after, actor, detail });
      await this.record([{ control: update.control, resourceId: update.clusterId, targetId: update.targetId, status: 'error', action: 'none', detail: `${update.detail} ${detail}` }]);
      const lost = this.storageFailureSince(run);
      if (lost) throw new StorageUnavailableError(`The update of ${update.clusterId} failed, and storage failed while recording it: ${describeError(lost)}`, { cause: lost });
      return { state: 'failed' as const, detail };
    };
    // A look that fails transiently (the status poll and the cluster read both throttled, 5xx or
    // timed out, each after retries) says nothing about the update: look again later, as for a
    // running one (bounded by the verify queue's attempts), never report the fix failed for it.
    const unknown = (err: unknown) => ({ state: 'pending' as const, detail: `NetGuard could not look at the update (${describeError(err)}); it looks again later.` });
    let status: Awaited<ReturnType<ArmGateway['operationStatus']>>;
    try {
      // Falls back to reading the cluster when the status poll fails (ArmGateway.operationStatus).
      status = await this.deps.arm.operationStatus(update.operation);
    } catch (err) {
      if (classifyError(err) === 'retryable') return unknown(err);
      return fail(`The update did not succeed: ${describeError(err)}`, 'write-failed');
    }
    if (status.status === 'InProgress') return { state: 'pending', detail: 'The update is still running.', retryAfterMs: status.retryAfterMs };

    const control = CONTROLS.find((c) => c.id === update.control);
    let cluster: ArmManagedCluster;
    try {
      cluster = (await this.deps.arm.getCluster(update.clusterId)).cluster;
    } catch (err) {
      if (classifyError(err) === 'retryable') return unknown(err);
      throw err;
    }
    const observation: ClusterObservation = {
      cluster,
      topology: new TopologyIndex({ clusters: [cluster], nsgs: [], vnets: [] }),
      fallbackAuthorizedRanges: this.deps.settings.authorizedIpRanges,
    };
    const judgement = control?.evaluate(observation).find((j) => sameId(j.targetId, update.targetId));
    if (!judgement || !judgement.compliant) {
      return fail(`Azure finished the update, but re-reading shows it did not take: ${judgement?.detail ?? 'no verdict'}`, 'verify-failed');
    }
    const detail = `${update.detail} NetGuard fixed it: ${update.change.summary}`;
    const verified = { control: update.control, clusterId: update.clusterId, targetId: update.targetId };
    const finding = await this.announceFix({ judgement: verified, detail, before: update.change.before, change: update.change, steps: update.change.summary, actor: update.actor, changedBy: update.changedBy, intent: update.intent });
    // The run that started the update has ended: the verified finding is recorded here.
    await this.record([finding]);
    // A fix whose records were lost is looked at again (the queue retries the message), not dropped.
    const lost = this.storageFailureSince(run);
    if (lost) throw new StorageUnavailableError(`The update of ${update.clusterId} took, but storage failed while recording it: ${describeError(lost)}`, { cause: lost });
    return { state: 'remediated', detail };
  }

  /** A verified fix: audited, announced (Teams notice) and counted for the flap guard, together. */
  private async announceFix(fix: {
    judgement: Pick<Judgement, 'control' | 'clusterId' | 'targetId'>;
    detail: string;
    before: unknown;
    change: PlannedChange;
    steps: string;
    actor?: string;
    changedBy?: string;
    /** The intent row(s) of the write(s) this fix took, and the run. */
    intent?: string;
    runId?: string;
  }): Promise<Finding> {
    const { control, clusterId, targetId } = fix.judgement;
    const finding: Finding = { control, resourceId: clusterId, targetId, status: 'drift', action: 'remediated', detail: fix.detail };
    const [announced, counted] = await Promise.all([
      this.notify({ kind: 'remediated', finding, change: fix.change, changedBy: fix.changedBy, at: this.clock().toISOString() }),
      (this.deps.store?.recordRemediation(control, targetId, this.clock(), fix.changedBy) ?? Promise.resolve()).then(
        () => true,
        (err: unknown) => {
          this.storageFailed(err);
          this.deps.warn?.(`Could not record the fix of ${targetId} for the flap guard: ${describeError(err)}`);
          return false;
        },
      ),
    ]);
    // The remediated row completes the intent, so it is written last and only when the notice and the
    // flap record are stored: a fix whose announcement was lost keeps an open intent, and the retry
    // (redelivery, next sweep, the verify queue) announces it — at least once rather than never.
    if (announced && counted) {
      await this.audit({ control, clusterId, targetId, event: 'remediated', before: fix.before, after: fix.change.after, actor: fix.actor ?? 'netguard (auto)', mode: fix.actor ? 'approve' : 'auto', detail: fix.steps, intent: fix.intent || undefined, runId: fix.runId });
    }
    return finding;
  }

  /** Re-reads what a judgement depends on and returns an observation with it replaced. */
  private async reobserve(observation: ClusterObservation, judgement: Judgement): Promise<ClusterObservation> {
    const arm = this.deps.arm;
    const inv = observation.topology.inventory;
    if (sameId(judgement.targetId, observation.cluster.id)) {
      const { cluster } = await arm.getCluster(observation.cluster.id);
      const inventory: Inventory = { ...inv, clusters: inv.clusters.map((c) => (sameId(c.id, cluster.id) ? cluster : c)) };
      return { ...observation, cluster, topology: new TopologyIndex(inventory) };
    }
    let nsg: ArmNetworkSecurityGroup;
    try {
      nsg = await arm.getNsg(judgement.targetId);
    } catch (err) {
      if (err instanceof ArmError && err.status === 404) return observation;
      throw err;
    }
    const inventory: Inventory = { ...inv, nsgs: inv.nsgs.map((n) => (sameId(n.id, nsg.id) ? nsg : n)) };
    return { ...observation, topology: new TopologyIndex(inventory) };
  }

  /**
   * The flap guard: a drift that keeps coming back after automatic fixes goes to a person instead of
   * being fought forever. Returns the reason, naming who keeps changing it, or undefined.
   */
  private async flapping(control: ControlId, targetId: string): Promise<string | undefined> {
    const store = this.deps.store;
    if (!store) return undefined;
    const { count, windowMinutes } = this.deps.settings.flap;
    const since = new Date(this.clock().getTime() - windowMinutes * 60_000);
    let recent: Array<{ at: string; changedBy?: string }>;
    try {
      recent = await store.recentRemediations(control, targetId, since);
    } catch (err) {
      // Without the history the flap guard cannot decide: no automatic write in this run.
      this.storageFailed(err);
      this.deps.warn?.(`Could not read the fix history of ${targetId}: ${describeError(err)}`);
      return undefined;
    }
    if (recent.length < count) return undefined;
    const who = [...new Set(recent.map((r) => r.changedBy).filter(Boolean))];
    const by = who.length ? `; it keeps being changed by ${who.join(', ')} (last at ${recent[0].at})` : `; last fixed at ${recent[0].at}`;
    return `the drift came back ${recent.length} times within ${windowMinutes} minutes after NetGuard fixed it${by}`;
  }

  /**
   * Applies an approved fix, but only if it is still the right one: the resource is re-read and the
   * control re-judged; a drift that is gone or has changed is reported and nothing is applied.
   */
  async executeApproval(approval: ApprovalRecord, decidedBy: string): Promise<{ result: 'applied' | 'started' | 'gone' | 'changed' | 'failed'; detail: string }> {
    const control = CONTROLS.find((c) => c.id === approval.control);
    if (!control) return { result: 'failed', detail: `Unknown control ${approval.control}.` };
    let inventory: Inventory;
    try {
      inventory = await this.deps.arm.readInventory(subscriptionOf(approval.clusterId));
    } catch (err) {
      return { result: 'failed', detail: `Could not re-read the resources: ${describeError(err)}` };
    }
    const cluster = inventory.clusters.find((c) => sameId(c.id, approval.clusterId));
    if (!cluster) return { result: 'gone', detail: `The cluster ${approval.clusterId} no longer exists; nothing was changed.` };
    const observation: ClusterObservation = {
      cluster,
      topology: new TopologyIndex(inventory),
      baselineAuthorizedRanges: await this.deps.store?.getBaseline(cluster.id).catch(() => undefined),
      fallbackAuthorizedRanges: this.deps.settings.authorizedIpRanges,
    };
    const judgement = control.evaluate(observation).find((j) => sameId(j.targetId, approval.targetId));
    if (!judgement || judgement.compliant) {
      return { result: 'gone', detail: `The drift is gone${judgement ? `: ${judgement.detail}` : ''}; nothing was changed.` };
    }
    const plan = control.plan(judgement, observation);
    if (plan.kind === 'none' || !sameChange(plan, approval.change)) {
      const now = plan.kind === 'none' ? plan.reason : plan.summary;
      return { result: 'changed', detail: `The drift has changed since the request (${judgement.detail} Now: ${now}); nothing was changed. A new request follows if it is still needed.` };
    }
    const run = new Run(this.storageFailures);
    run.actor = decidedBy;
    run.changedBy = approval.changedBy;
    try {
      const outcome = await this.remediate(run, control, judgement, observation, plan, true);
      if (outcome.action === 'remediated') return { result: 'applied', detail: outcome.detail };
      if (outcome.started) return { result: 'started', detail: outcome.detail };
      return { result: 'failed', detail: outcome.detail };
    } catch (err) {
      return { result: 'failed', detail: `The fix failed: ${describeError(err)}` };
    }
  }

  /** False when the notice could not be queued (a storage failure of the run). */
  private async notify(notice: Notice): Promise<boolean> {
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

  private async audit(entry: Omit<Parameters<StateStore['audit']>[0], 'at'>): Promise<void> {
    if (!this.deps.store) return;
    try {
      await this.deps.store.audit({ ...entry, at: this.clock().toISOString() });
    } catch (err) {
      this.storageFailed(err);
      this.deps.warn?.(`Could not write the audit row for ${entry.targetId}: ${describeError(err)}`);
    }
  }
}

/** The clusters a resource can affect, and whether only node-ssh-deny is concerned. */
export function clustersAffectedBy(what: AffectedResource | undefined, topology: TopologyIndex): { clusters: ArmManagedCluster[]; onlyNodeSsh: boolean } {
  const clusters = topology.inventory.clusters;
  if (!what) return { clusters: [], onlyNodeSsh: true };
  const id = idKey(what.id);
  switch (what.kind) {
    case 'cluster':
      return { clusters: clusters.filter((c) => idKey(c.id) === id), onlyNodeSsh: false };
    case 'nsg':
      // Behind the NSG now, or (after a detach or delete) still naming it from a node subnet in the inventory.
      return { clusters: clusters.filter((c) => topology.clusterSubnets(c).nodeSubnets.some((s) => idKey(s.nsgId ?? '') === id)), onlyNodeSsh: true };
    case 'subnet':
      return { clusters: topology.clustersUsingSubnet(what.id), onlyNodeSsh: true };
    case 'vnet':
      return {
        clusters: clusters.filter((c) => {
          const s = topology.clusterSubnets(c);
          return [...s.nodeSubnets, ...s.podSubnets].some((x) => idKey(x.id).startsWith(`${id}/subnets/`));
        }),
        onlyNodeSsh: true,
      };
  }
}

/** The observation with one rule of one NSG replaced (or added) as read back after a write. */
function withRule(observation: ClusterObservation, nsgId: string, rule: ArmSecurityRule): ClusterObservation {
  const inv = observation.topology.inventory;
  const nsgs = inv.nsgs.map((n) => {
    if (!sameId(n.id, nsgId)) return n;
    const others = (n.properties.securityRules ?? []).filter((r) => r.name.toLowerCase() !== rule.name.toLowerCase());
    return { ...n, properties: { ...n.properties, securityRules: [...others, rule] } };
  });
  return { ...observation, topology: new TopologyIndex({ ...inv, nsgs }) };
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (node[key] === undefined || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** Same fix on the same thing (ETags and wording aside). */
function sameChange(a: PlannedChange, b: PlannedChange): boolean {
  const where = (p: PlannedChange) => (p.kind === 'security-rule' ? [p.nsgId.toLowerCase(), p.ruleName.toLowerCase()] : [p.clusterId.toLowerCase(), ...p.path]);
  return a.kind === b.kind && JSON.stringify(where(a)) === JSON.stringify(where(b)) && JSON.stringify(a.after) === JSON.stringify(b.after);
}

function sameList(a: string[], b: string[]): boolean {
  const x = [...a].map((s) => s.toLowerCase()).sort();
  const y = [...b].map((s) => s.toLowerCase()).sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function lowerFirst(s: string): string {
  return s ? s[0].toLowerCase() + s.slice(1) : s;
}

export { classifyError };
