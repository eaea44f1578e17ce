// instance-metadata in the sweep: a pass the engine runs after judging a subscription's clusters
// (sweep only: no event reports Kubernetes objects). It observes the Kubernetes objects the control
// needs, judges, resolves the mode like every control, and in auto mode writes NetGuard's
// NetworkPolicy where that is a pure restriction, then re-reads and re-judges to verify.
//
// First integration, kept apart from the engine while the engine is reshaped: approvals of
// NetworkPolicy writes are not wired to Teams yet, so `approve` reports what it would do (and says so).
import type { ArmGateway } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import type { Settings } from '../config';
import { INSTANCE_METADATA, instanceMetadata, needsKubernetesObjects, type InstanceMetadataObservation } from '../controls/instanceMetadata';
import type { KubeNetworkPolicyChange, KubeNetworkPolicyWrite } from '../controls/types';
import { resolveMode } from '../engine/modes';
import type { StateStore } from '../store/types';
import type { ControlId, Finding, Mode } from '../types';
import { explainKubeFailure, observeKube, type KubeAccessOptions, type KubeObservation } from './access';
import type { KubeClient } from './client';
import { KubeError } from './client';
import { judgeNamespace } from './networkPolicy';

// instance-metadata is not yet a public ControlId (it joins CONTROL_IDS with the engine reshape,
// together with its mode setting and the infra); until then its findings carry it through this cast.
const CONTROL_ID = INSTANCE_METADATA as unknown as ControlId;

export interface InstanceMetadataSweepDeps {
  arm: ArmGateway;
  settings: Pick<Settings, 'mode' | 'controlModes' | 'maxWritesPerRun'> & { imdsExcludedNamespaces?: string[] };
  store?: StateStore;
  clock?: () => Date;
  progress?: (line: string) => void;
  warn?: (line: string) => void;
  kube?: KubeAccessOptions;
}

export type SweepPass = (clusters: ArmManagedCluster[], options: { cliMode?: Mode }) => Promise<Finding[]>;

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** Builds the pass; one call judges (and in auto mode fixes) the clusters of one subscription. */
export function instanceMetadataSweep(deps: InstanceMetadataSweepDeps): SweepPass {
  const clock = deps.clock ?? (() => new Date());
  return async (clusters, options) => {
    const findings: Finding[] = [];
    const budget = { writes: 0 };
    for (const cluster of clusters) findings.push(await judgeCluster(deps, clock, cluster, options, budget));
    return findings;
  };
}

async function observe(deps: InstanceMetadataSweepDeps, cluster: ArmManagedCluster): Promise<{ observation: InstanceMetadataObservation; client?: KubeClient }> {
  const observation: InstanceMetadataObservation = { cluster, excludedNamespaces: deps.settings.imdsExcludedNamespaces };
  if (!needsKubernetesObjects(cluster)) return { observation };
  try {
    const { client, observed } = await observeKube(deps.arm, cluster, deps.kube);
    return { observation: { ...observation, kube: observed }, client };
  } catch (err) {
    return { observation: { ...observation, kube: { error: explainKubeFailure(cluster, err) } } };
  }
}

async function judgeCluster(
  deps: InstanceMetadataSweepDeps,
  clock: () => Date,
  cluster: ArmManagedCluster,
  options: { cliMode?: Mode },
  budget: { writes: number },
): Promise<Finding> {
  const base = { control: CONTROL_ID, resourceId: cluster.id, targetId: cluster.id };
  deps.progress?.(`instance-metadata: judging ${cluster.name}…`);
  const { observation, client } = await observe(deps, cluster);
  try {
    let judgement;
    try {
      [judgement] = instanceMetadata.evaluate(observation);
    } catch (err) {
      return { ...base, status: 'error', action: 'none', detail: (err as Error)?.message ?? String(err) };
    }
    const resolved = resolveMode({ control: { id: CONTROL_ID, defaultMode: instanceMetadata.defaultMode }, judgement, settings: deps.settings, cliMode: options.cliMode });
    const notes = resolved.notes.length ? ` ${resolved.notes.join(' ')}` : '';
    if (resolved.exempt) return { ...base, status: 'exempt', action: 'skipped', detail: `${judgement.detail}${notes}` };
    if (judgement.compliant) return { ...base, status: 'compliant', action: 'none', detail: `${judgement.detail}${notes}` };
    const plan = instanceMetadata.plan(judgement, observation);
    if (plan.kind === 'none') return { ...base, status: 'drift', action: 'reported', detail: `${judgement.detail} ${plan.reason}${notes}` };
    if (resolved.mode === 'report') {
      return { ...base, status: 'drift', action: 'reported', detail: `${judgement.detail} Mode report: NetGuard would ${lowerFirst(plan.summary)}${notes}` };
    }
    if (resolved.mode === 'approve' || plan.writes.length === 0 || !client) {
      const why =
        resolved.mode === 'approve'
          ? deps.store
            ? 'The control is in approve mode, and approving NetworkPolicy writes in Teams is not wired yet: apply it with --mode auto, or by hand'
            : 'The control is in approve mode, but without storage approve acts as report'
          : 'Needs a person';
      return { ...base, status: 'drift', action: 'reported', detail: `${judgement.detail} ${why}: ${plan.summary}${notes}` };
    }
    if (budget.writes + plan.writes.length > deps.settings.maxWritesPerRun) {
      return { ...base, status: 'drift', action: 'reported', detail: `${judgement.detail} This run reached AKS_NETGUARD_MAX_WRITES_PER_RUN (${deps.settings.maxWritesPerRun}): ${plan.summary}${notes}` };
    }
    return await remediate(deps, clock, cluster, judgement.detail, client, plan, budget, notes);
  } finally {
    client?.close();
  }
}

async function remediate(
  deps: InstanceMetadataSweepDeps,
  clock: () => Date,
  cluster: ArmManagedCluster,
  detail: string,
  client: KubeClient,
  plan: KubeNetworkPolicyChange,
  budget: { writes: number },
  notes: string,
): Promise<Finding> {
  const base = { control: CONTROL_ID, resourceId: cluster.id, targetId: cluster.id };
  const judgement = { detail };
  const done: string[] = [];
  const failed: string[] = [];
  for (const write of plan.writes) {
    // No write without a record: with storage, the intent is written first, or nothing is.
    if (deps.store) {
      try {
        await deps.store.audit({ at: clock().toISOString(), control: CONTROL_ID, clusterId: cluster.id, targetId: `${cluster.id}/namespaces/${write.namespace}`, event: 'write-intent', before: write.before, after: write.after, actor: 'netguard (auto)', detail: describeWrite(write) });
      } catch (err) {
        return { ...base, status: 'error', action: 'none', detail: `${judgement.detail} NetGuard made no write: it could not record its intent (${(err as Error)?.message ?? String(err)}).` };
      }
    }
    budget.writes++;
    deps.progress?.(`instance-metadata: ${describeWrite(write)}`);
    try {
      if (write.method === 'create') await client.createNetworkPolicy(write.namespace, write.after);
      else await client.replaceNetworkPolicy(write.namespace, write.name, write.after);
      done.push(write.namespace);
    } catch (err) {
      // A 409 means someone created or changed it meanwhile: the re-read below judges what is there now.
      if (!(err instanceof KubeError && err.kind === 'conflict')) failed.push(`${write.namespace} (${(err as Error).message})`);
    }
  }

  // Verify: read again and judge again; only a namespace that is now closed counts as fixed.
  let after: KubeObservation;
  try {
    const reread = await observeKube(deps.arm, cluster, deps.kube);
    reread.client.close();
    after = reread.observed;
  } catch (err) {
    return { ...base, status: 'error', action: 'none', detail: `${judgement.detail} NetGuard wrote to ${done.join(', ') || 'no namespace'} but could not re-read to verify: ${explainKubeFailure(cluster, err).message}` };
  }
  const excluded = new Set(deps.settings.imdsExcludedNamespaces ?? []);
  const stillOpen = plan.writes.filter((w) => !excluded.has(w.namespace) && judgeNamespace(w.namespace, after.policies).open).map((w) => w.namespace);
  const fixed = plan.writes.map((w) => w.namespace).filter((ns) => !stillOpen.includes(ns));
  if (deps.store && fixed.length) {
    try {
      await deps.store.audit({ at: clock().toISOString(), control: CONTROL_ID, clusterId: cluster.id, targetId: cluster.id, event: 'remediated', actor: 'netguard (auto)', detail: `NetworkPolicy ${plan.writes[0].name} in ${fixed.join(', ')}` });
    } catch (err) {
      deps.warn?.(`Could not write the audit row for ${cluster.id}: ${(err as Error)?.message ?? String(err)}`);
    }
  }
  if (stillOpen.length || failed.length) {
    const why = failed.length ? `the writes failed: ${failed.join('; ')}` : `re-reading shows ${stillOpen.join(', ')} still open`;
    return { ...base, status: 'error', action: 'none', detail: `${judgement.detail} NetGuard could not fix it: ${why}.${notes}` };
  }
  const fixedText = `NetGuard fixed ${fixed.join(', ')}: ${plan.writes.map(describeWrite).join(' ')}`;
  if (plan.leftToPerson.length) {
    const rest = plan.leftToPerson.map((p) => `${p.namespace}: ${p.reason}`).join('; ');
    return { ...base, status: 'drift', action: 'reported', detail: `${judgement.detail} ${fixedText} Still open, for a person — ${rest}.${notes}` };
  }
  return { ...base, status: 'drift', action: 'remediated', detail: `${judgement.detail} ${fixedText}${notes}` };
}

function describeWrite(w: KubeNetworkPolicyWrite): string {
  return w.method === 'create' ? `Created ${w.name} in ${w.namespace}.` : `Put ${w.name} back in ${w.namespace} (resourceVersion ${w.resourceVersion}).`;
}

/** AKS_NETGUARD_PREVIEW_INSTANCE_METADATA=on turns the pass on for `aks-netguard sweep` while it is integrated. */
export function instanceMetadataPreview(env: NodeJS.ProcessEnv): boolean {
  return /^(on|true|1|yes)$/i.test((env.AKS_NETGUARD_PREVIEW_INSTANCE_METADATA ?? '').trim());
}
