// Deciding, per judgement: exemption (Teams), mode (tags, CLI, settings), and for a drift whether
// NetGuard fixes it now, asks a person (approve mode, a change only a person may make, the write
// budget, the flap guard) or only reports it. One outcome per target and run, shared by the findings
// of every cluster that points at it.
import { classifyError, describeError } from '../azure/errors';
import { idKey } from '../azure/ids';
import type { ArmManagedCluster } from '../azure/armTypes';
import { TopologyIndex, type Inventory } from '../azure/topology';
import type { ClusterObservation, Control, Judgement } from '../controls/types';
import { StoreError } from '../store/tables';
import type { KnownFindings } from '../store/types';
import type { ControlId, Finding, Mode } from '../types';
import { remediate } from './apply';
import { requestApproval } from './approvals';
import { writablePart, writesOf, personReason as personReasonOf } from './changeKinds';
import { lowerFirst, type EngineContext, type RunOptions, type Run, type TargetOutcome } from './context';
import { resolveMode } from './modes';
import { observeCluster } from './observeCluster';
import { completeOpenIntents } from './openIntents';
import { flapKey } from './prefetch';

/** Judges the given controls on each cluster, acting on drift, and records the findings. */
export async function judgeClusters(
  ctx: EngineContext,
  run: Run,
  inventory: Inventory,
  clusters: ArmManagedCluster[],
  controls: readonly Control[],
  options: RunOptions,
  topology = new TopologyIndex(inventory),
  onlyTargets?: Set<string>,
): Promise<void> {
  const judged: Finding[] = [];
  const known = readFindingsAhead(ctx, clusters, controls);
  for (const cluster of clusters) {
    run.clusters++;
    try {
      const observation = await observeCluster(ctx, run, cluster, topology, controls);
      for (const control of controls) {
        const findings = await judgeControl(ctx, run, control, observation, options, onlyTargets);
        run.findings.push(...findings);
        judged.push(...findings);
      }
    } finally {
      run.closeKube(cluster);
    }
  }
  await ctx.record(judged, known);
}

/** Up to this many clusters judged at once (an event), their stored findings are read ahead. */
const READ_FINDINGS_AHEAD_MAX_CLUSTERS = 4;

/**
 * An event judges a cluster or two: their stored findings are read while they are judged and fixed,
 * not after. A failed read only means recordFindings reads them itself.
 */
function readFindingsAhead(ctx: EngineContext, clusters: ArmManagedCluster[], controls: readonly Control[]): Promise<KnownFindings | undefined> | undefined {
  const store = ctx.deps.store;
  if (!store?.findingsOf || clusters.length === 0 || clusters.length > READ_FINDINGS_AHEAD_MAX_CLUSTERS) return undefined;
  return store.findingsOf(controls.map((c) => c.id), clusters.map((c) => c.id)).catch(() => undefined);
}

async function judgeControl(ctx: EngineContext, run: Run, control: Control, observation: ClusterObservation, options: RunOptions, onlyTargets?: Set<string>): Promise<Finding[]> {
  const clusterId = observation.cluster.id;
  let judgements: Judgement[];
  try {
    judgements = control.evaluate(observation);
  } catch (err) {
    // e.g. a cluster whose Kubernetes API NetGuard cannot reach: the message says how to grant access.
    // An exempt control stays exempt: it is left alone whatever NetGuard could or could not read.
    const cluster = observation.cluster;
    const granted = await grantedExemption(ctx, control.id, clusterId);
    const byTag = resolveMode({ control, judgement: { tagSources: [cluster.tags] }, settings: ctx.deps.settings, cliMode: options.cliMode });
    if (granted || byTag.exempt) {
      const why = granted ? `Exempted in Teams by ${granted.by} until ${granted.until}.` : byTag.notes.join(' ');
      return [{ control: control.id, resourceId: clusterId, targetId: clusterId, status: 'exempt', action: 'skipped', detail: `NetGuard could not judge it (${describeError(err)}). ${why}` }];
    }
    return [{ control: control.id, resourceId: clusterId, targetId: clusterId, status: 'error', action: 'none', detail: `Could not judge: ${describeError(err)}` }];
  }
  const out: Finding[] = [];
  for (const judgement of judgements) {
    // An event about one NSG or subnet concerns only its own judgements (the rest was not re-read).
    if (onlyTargets && !onlyTargets.has(idKey(judgement.targetId))) continue;
    const base = { control: control.id, resourceId: clusterId, targetId: judgement.targetId };
    const granted = await grantedExemption(ctx, control.id, judgement.targetId);
    if (granted) {
      out.push({ ...base, status: 'exempt', action: 'skipped', detail: `${judgement.detail} Exempted in Teams by ${granted.by} until ${granted.until}.` });
      continue;
    }
    const resolved = resolveMode({ control, judgement, settings: ctx.deps.settings, cliMode: options.cliMode });
    const notes = resolved.notes.length ? ` ${resolved.notes.join(' ')}` : '';
    if (resolved.exempt) {
      out.push({ ...base, status: 'exempt', action: 'skipped', detail: `${judgement.detail}${notes}` });
      continue;
    }
    if (judgement.compliant) {
      // Compliant because of NetGuard's own earlier write whose outcome was lost? Then it is that fix.
      const completed = await completeOpenIntents(ctx, run, judgement, observation);
      if (completed) {
        out.push({ ...base, status: 'drift', action: completed.action, detail: `${completed.detail}${notes}` });
        continue;
      }
      await saveBaseline(ctx, control, observation.cluster);
      out.push({ ...base, status: 'compliant', action: 'none', detail: `${judgement.detail}${notes}` });
      continue;
    }
    const key = `${control.id}|${idKey(judgement.targetId)}`;
    let outcome = run.outcomes.get(key);
    if (!outcome) {
      outcome = handleDrift(ctx, run, control, judgement, observation, resolved.mode, options).catch((err) => {
        if (err instanceof StoreError) ctx.storageFailed(err); // e.g. the approval could not be stored
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

async function grantedExemption(ctx: EngineContext, control: ControlId, targetId: string): Promise<{ by: string; until: string } | undefined> {
  if (!ctx.deps.exemptions) return undefined;
  try {
    return await ctx.deps.exemptions.activeExemption(control, targetId, ctx.clock());
  } catch (err) {
    // Unknown exemptions: nothing may be changed in this run (the next intent refuses).
    ctx.storageFailed(err);
    ctx.deps.warn?.(`Could not read the exemptions of ${targetId}: ${describeError(err)}`);
    return undefined;
  }
}

/** Stores the known-good value of a control that declares a baseline, while it finds the cluster compliant. */
async function saveBaseline(ctx: EngineContext, control: Control, cluster: ArmManagedCluster): Promise<void> {
  const store = ctx.deps.store;
  if (!control.needs.baseline || !store) return;
  const ranges = control.needs.baseline.knownGood(cluster);
  if (!ranges) return;
  try {
    const saved = await store.getBaseline(cluster.id);
    if (saved && sameList(saved, ranges)) return;
    await store.putBaseline(cluster.id, ranges, ctx.clock());
  } catch (err) {
    ctx.storageFailed(err);
    ctx.deps.warn?.(`Could not save the authorized IP ranges of ${cluster.id}: ${describeError(err)}`);
  }
}

async function handleDrift(ctx: EngineContext, run: Run, control: Control, judgement: Judgement, observation: ClusterObservation, mode: Mode, options: RunOptions): Promise<TargetOutcome> {
  const plan = control.plan(judgement, observation);
  if (plan.kind === 'none') return { action: 'reported', detail: `${judgement.detail} ${plan.reason}` };

  let personReason: string | undefined;
  let first = plan;
  if (mode === 'report') return { action: 'reported', detail: `${judgement.detail} Mode report: NetGuard would ${lowerFirst(plan.summary)}` };
  const writable = writablePart(plan, false);
  if (mode === 'approve') personReason = 'the control is in approve mode';
  else if (!writable) personReason = personReasonOf(plan);
  else if (run.writes + writesOf(writable) > ctx.deps.settings.maxWritesPerRun) {
    // A change of many writes (NetworkPolicies in many namespaces) counts each of them.
    personReason = `this run reached AKS_NETGUARD_MAX_WRITES_PER_RUN (${ctx.deps.settings.maxWritesPerRun})`;
  } else first = writable;
  personReason ??= await flapping(ctx, control.id, judgement.targetId, run.flapHistory.get(flapKey(control.id, judgement.targetId)));
  if (personReason) return requestApproval(ctx, run, control, judgement, plan, personReason, options);
  run.changedBy = options.changedBy;
  const outcome = await remediate(ctx, run, control, judgement, observation, first);
  // Part fixed, the rest only a person may do: ask for it, saying what was already fixed.
  if (outcome.rest) return requestApproval(ctx, run, control, outcome.rest.judgement, outcome.rest.plan, outcome.rest.reason, {}, outcome.rest.fixed);
  return outcome;
}

/**
 * The flap guard: a drift that keeps coming back after automatic fixes goes to a person instead of
 * being fought forever. Returns the reason, naming who keeps changing it, or undefined.
 */
async function flapping(ctx: EngineContext, control: ControlId, targetId: string, prefetched?: Promise<Array<{ at: string; changedBy?: string }>>): Promise<string | undefined> {
  const store = ctx.deps.store;
  if (!store) return undefined;
  const { count, windowMinutes } = ctx.deps.settings.flap;
  const since = new Date(ctx.clock().getTime() - windowMinutes * 60_000);
  let recent: Array<{ at: string; changedBy?: string }>;
  try {
    recent = await (prefetched ?? store.recentRemediations(control, targetId, since));
  } catch (err) {
    // Without the history the flap guard cannot decide: no automatic write in this run.
    ctx.storageFailed(err);
    ctx.deps.warn?.(`Could not read the fix history of ${targetId}: ${describeError(err)}`);
    return undefined;
  }
  if (recent.length < count) return undefined;
  const who = [...new Set(recent.map((r) => r.changedBy).filter(Boolean))];
  const by = who.length ? `; it keeps being changed by ${who.join(', ')} (last at ${recent[0].at})` : `; last fixed at ${recent[0].at}`;
  return `the drift came back ${recent.length} times within ${windowMinutes} minutes after NetGuard fixed it${by}`;
}

function sameList(a: string[], b: string[]): boolean {
  const x = [...a].map((s) => s.toLowerCase()).sort();
  const y = [...b].map((s) => s.toLowerCase()).sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
