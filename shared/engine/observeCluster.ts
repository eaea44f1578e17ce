// What the engine reads for one cluster: only what the controls in play declare (their `needs.reads`),
// so a network event pays for no baseline and no event ever reads Kubernetes objects. Also the
// re-reads after a write, which verify it against the same parts.
import type { ArmManagedCluster, ArmNetworkSecurityGroup } from '../azure/armTypes';
import { ArmError, describeError } from '../azure/errors';
import { idKey, sameId } from '../azure/ids';
import { TopologyIndex, type Inventory } from '../azure/topology';
import { CONTROLS } from '../controls/index';
import type { ClusterObservation, Control, Judgement, ObservedPart } from '../controls/types';
import type { KubeObservation } from '../kube/access';
import type { KubeClient } from '../kube/client';
import type { EngineContext, Run } from './context';

/** The controls that can be judged from these parts: everything each reads must have been read. */
export function controlsReading(parts: readonly ObservedPart[]): Control[] {
  return CONTROLS.filter((c) => c.needs.reads.every((r) => parts.includes(r)));
}

function wantsKubernetesObjects(control: Control, cluster: ArmManagedCluster): boolean {
  if (!control.needs.reads.includes('kubernetes-objects')) return false;
  return control.needs.kubernetesObjectsWanted ? control.needs.kubernetesObjectsWanted(cluster) : true;
}

/**
 * The Kubernetes access code, loaded on first use: only a sweep (or an approval) of a control that
 * reads Kubernetes objects needs it, so the event path does not load it.
 */
const kubeAccess = () => import('../kube/access');

/** The Kubernetes client of the run for this cluster, opened on first use (closed by Run.closeKube). */
export async function kubeClientFor(ctx: EngineContext, run: Run, cluster: ArmManagedCluster): Promise<{ client: KubeClient; observed?: KubeObservation }> {
  const key = idKey(cluster.id);
  const open = run.kubeClients.get(key);
  if (open) return { client: open };
  const { observeKube } = await kubeAccess();
  const { kubeTimeoutMs } = await import('../kube/client');
  const { client, observed } = await observeKube(ctx.deps.arm, cluster, ctx.deps.kube ?? { timeoutMs: kubeTimeoutMs(ctx.deps.settings) });
  run.kubeClients.set(key, client);
  return { client, observed };
}

/** The namespaces and NetworkPolicies, or the access error saying how to grant access (the sweep goes on). */
async function readKube(ctx: EngineContext, run: Run, cluster: ArmManagedCluster): Promise<KubeObservation | { error: Error }> {
  const { explainKubeFailure, readKubeObjects } = await kubeAccess();
  try {
    const { client, observed } = await kubeClientFor(ctx, run, cluster);
    return observed ?? (await readKubeObjects(client, cluster));
  } catch (err) {
    return { error: explainKubeFailure(cluster, err) };
  }
}

/** Builds the observation of one cluster for the given controls. */
export async function observeCluster(ctx: EngineContext, run: Run, cluster: ArmManagedCluster, topology: TopologyIndex, controls: readonly Control[]): Promise<ClusterObservation> {
  const { store, settings } = ctx.deps;
  let baseline: string[] | undefined;
  // Only a control that declares a baseline uses it: a run without one does not pay for reading it.
  if (store && controls.some((c) => c.needs.baseline)) {
    try {
      baseline = await store.getBaseline(cluster.id);
    } catch (err) {
      ctx.deps.warn?.(`Could not read the saved authorized IP ranges of ${cluster.id}: ${describeError(err)}`);
    }
  }
  const observation: ClusterObservation = {
    cluster,
    topology,
    baselineAuthorizedRanges: baseline,
    fallbackAuthorizedRanges: settings.authorizedIpRanges,
    excludedNamespaces: settings.imdsExcludedNamespaces,
  };
  if (controls.some((c) => wantsKubernetesObjects(c, cluster))) {
    ctx.deps.progress?.(`Reading the namespaces and NetworkPolicies of ${cluster.name}…`);
    observation.kube = await readKube(ctx, run, cluster);
  }
  return observation;
}

/** Re-reads what a judgement depends on (after a write, or a conflict) and returns the observation with it replaced. */
export async function reobserve(ctx: EngineContext, run: Run, control: Control, observation: ClusterObservation, judgement: Judgement): Promise<ClusterObservation> {
  const arm = ctx.deps.arm;
  const inv = observation.topology.inventory;
  if (control.needs.reads.includes('kubernetes-objects') && observation.kube && !('error' in observation.kube)) {
    // The cluster resource is not what NetGuard wrote: re-list the Kubernetes objects (errors propagate).
    const { readKubeObjects } = await kubeAccess();
    const { client } = await kubeClientFor(ctx, run, observation.cluster);
    return { ...observation, kube: await readKubeObjects(client, observation.cluster) };
  }
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
