// The reconcile engine: observe → evaluate → mode/exemption → act / ask / report → verify → record.
// An event is only a hint of which resources to look at; every run re-reads live state and acts only
// on the difference, so running twice changes nothing.
//
// This file is the entry point (sweep, event, approval, verify queue); the work is done by small
// modules: observeCluster.ts (what the controls in play read), decide.ts (exemption, mode, flap
// guard), apply.ts (intent, write gate, verification), changeKinds.ts (each kind of change),
// approvals.ts (request and execute), verifyUpdates.ts (the verify queue), context.ts (shared state).
import pLimit from 'p-limit';
import type { ArmManagedCluster } from '../azure/armTypes';
import { classifyError, describeError } from '../azure/errors';
import { idKey, subscriptionOf } from '../azure/ids';
import { TopologyIndex, type Inventory } from '../azure/topology';
import { CONTROLS } from '../controls/index';
import { OBSERVED_PARTS, type ObservedPart } from '../controls/types';
import type { ApprovalRecord } from '../store/types';
import { StoreError } from '../store/tables';
import { summarize, type RunReport } from '../types';
import { executeApproval, type ApprovalResult } from './approvals';
import { EngineContext, type EngineDeps, type Run, type RunOptions } from './context';
import { judgeClusters } from './decide';
import type { PendingClusterUpdate } from './deferred';
import { affectedResourceOf, observeFromCache, type AffectedResource, type Observed } from './observe';
import { controlsReading } from './observeCluster';
import { prefetchFlapHistory } from './prefetch';
import { verifyClusterUpdate, type VerifyResult } from './verifyUpdates';

export type { EngineDeps, ExemptionSource, RunOptions } from './context';

/** Subscriptions read at once during a sweep. */
const SWEEP_READ_CONCURRENCY = 4;

/**
 * What an event re-reads: a network event (NSG, rule, subnet, VNet) the network around the clusters
 * behind it; a cluster or agent pool event the cluster and its network. No event reads Kubernetes
 * objects, so a control that reads them is judged by the sweep only.
 */
function partsReadByEvent(networkOnly: boolean): ObservedPart[] {
  return networkOnly ? ['nsg-topology'] : ['cluster-properties', 'nsg-topology'];
}

type Outcome = { report: RunReport; retryable?: Error; storageFailure?: Error };

export class Engine {
  private readonly ctx: EngineContext;

  constructor(deps: EngineDeps) {
    this.ctx = new EngineContext(deps);
  }

  private get deps(): EngineDeps {
    return this.ctx.deps;
  }

  /** Sweeps whole subscriptions; one subscription's failure becomes error findings, never an abort. */
  async sweep(subscriptionIds: string[], options: RunOptions = {}): Promise<RunReport> {
    return (await this.sweepDetailed(subscriptionIds, options)).report;
  }

  /** sweep(), plus the first retryable failure (throttling, 5xx), so a queued sweep can be retried. */
  async sweepDetailed(subscriptionIds: string[], options: RunOptions = {}): Promise<Outcome> {
    const run = this.ctx.newRun(options.runId);
    // The sweep reads everything any control declares, Kubernetes objects included.
    const controls = controlsReading(OBSERVED_PARTS);
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
      await judgeClusters(this.ctx, run, inventory, inventory.clusters, controls, options);
    }
    return this.outcomeOf(run);
  }

  /**
   * Reconciles what one resource can affect: a cluster (every control an event can judge), or an
   * NSG, subnet or VNet (the controls that read only the network, of the clusters behind it).
   * Unknown resources lead to an empty report.
   */
  async reconcile(resource: string | AffectedResource, options: RunOptions = {}): Promise<RunReport> {
    return (await this.reconcileDetailed(resource, options)).report;
  }

  /** reconcile(), plus the first retryable failure (a 5xx or 429 on a write) so an event can be redelivered. */
  async reconcileDetailed(resource: string | AffectedResource, options: RunOptions = {}): Promise<Outcome> {
    const run = this.ctx.newRun(options.runId);
    // An event's route names the resource and its kind; a bare id (CLI, scripts) is classified here.
    const what = typeof resource === 'string' ? affectedResourceOf(resource) : resource;
    const resourceId = typeof resource === 'string' ? resource : resource.id;
    prefetchFlapHistory(run.flapHistory, what, controlsReading(partsReadByEvent(true)).map((c) => c.id), this.deps.store, this.deps.settings.flap, this.ctx.clock());
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
      await judgeClusters(this.ctx, run, inventory, clusters, controlsReading(partsReadByEvent(onlyNodeSsh)), options, topology, targets);
      return this.outcomeOf(run);
    }
    const sub = subscriptionOf(resourceId);
    const inventory = await this.deps.arm.readInventory(sub);
    await this.refreshCache(sub, inventory);
    const topology = new TopologyIndex(inventory);
    const scope = clustersAffectedBy(what, topology);
    await judgeClusters(this.ctx, run, inventory, scope.clusters, controlsReading(partsReadByEvent(scope.onlyNodeSsh)), options, topology);
    return this.outcomeOf(run);
  }

  /**
   * Applies an approved fix, but only if it is still the right one: the resource is re-read and the
   * control re-judged; a drift that is gone or has changed is reported and nothing is applied.
   */
  async executeApproval(approval: ApprovalRecord, decidedBy: string): Promise<ApprovalResult> {
    return executeApproval(this.ctx, approval, decidedBy);
  }

  /**
   * A later look at a started cluster update (the verify queue): still running, or re-read, re-judged
   * and recorded — remediated only when the control now finds the cluster compliant.
   */
  async verifyClusterUpdate(update: PendingClusterUpdate): Promise<VerifyResult> {
    return verifyClusterUpdate(this.ctx, update);
  }

  /**
   * The report, the first retryable failure, and the storage failure that lost records, if any: a
   * run whose records were lost is retried (an event) or ends with exit 1 (the CLI).
   */
  private outcomeOf(run: Run): Outcome {
    const storageFailure = this.ctx.storageFailureSince(run);
    run.closeKube();
    return { report: { findings: run.findings, summary: summarize(run.findings, run.clusters) }, retryable: run.retryable ?? storageFailure, storageFailure };
  }

  private refreshCache(subscriptionId: string, inventory: Inventory): Promise<void> {
    return this.ctx.refreshCache(subscriptionId, inventory);
  }

  private failScope(run: Run, scopeId: string, detail: string): void {
    for (const control of CONTROLS) {
      run.findings.push({ control: control.id, resourceId: scopeId, targetId: scopeId, status: 'error', action: 'none', detail });
    }
  }
}

/** The clusters a resource can affect, and whether only the network around them was touched. */
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

export { classifyError };
