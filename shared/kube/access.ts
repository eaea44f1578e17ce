// Getting into one cluster's Kubernetes API with NetGuard's own identity, and saying plainly what
// is missing when it cannot: local accounts only, no Kubernetes RBAC grant, no network path.
import { isLoopbackHost, type ArmGateway } from '../azure/arm';
import type { ArmManagedCluster } from '../azure/armTypes';
import { describeError } from '../azure/errors';
import { CHANGE_PERMISSIONS, READ_PERMISSIONS } from '../controls/needs';
import { AKS_SERVER_SCOPE, KubeClient, KubeError, type KubeClientOptions, type KubeNamespace } from './client';
import { KubeconfigError, readKubeconfig } from './kubeconfig';
import type { ObservedPolicy } from './networkPolicy';

/**
 * The data actions NetGuard needs on a cluster (Azure RBAC for Kubernetes authorization): what reading
 * Kubernetes objects and writing NetworkPolicies declare (shared/controls/needs.ts), the same list the
 * custom role grants.
 */
export const KUBE_DATA_ACTIONS: readonly string[] = [
  ...READ_PERMISSIONS['kubernetes-objects'].dataActions,
  ...CHANGE_PERMISSIONS['kube-network-policy'].dataActions,
].map((a) => a.action);

const GRANT_HOW =
  `enable Azure RBAC for Kubernetes authorization (az aks update --enable-aad --enable-azure-rbac) and give NetGuard's identity a role on the cluster with the data actions ${KUBE_DATA_ACTIONS.join(', ')} (README "Deploy")`;

export type KubeAccessProblem = 'local-accounts' | 'not-authorized' | 'unreachable' | 'refused-config' | 'failed';

/** Why NetGuard could not read a cluster's Kubernetes objects; `message` says how to fix it. */
export class KubeAccessError extends Error {
  constructor(
    readonly problem: KubeAccessProblem,
    message: string,
    readonly transient = false,
  ) {
    super(message);
    this.name = 'KubeAccessError';
  }
}

/** What instance-metadata reads from one cluster. */
export interface KubeObservation {
  namespaces: KubeNamespace[];
  policies: ObservedPolicy[];
}

export interface KubeAccessOptions {
  timeoutMs?: number;
  pageSize?: number;
  retry?: KubeClientOptions['retry'];
}

function isPrivate(cluster: ArmManagedCluster): boolean {
  return cluster.properties?.apiServerAccessProfile?.enablePrivateCluster === true;
}

/** Turns a failed Kubernetes request into the sentence an operator acts on. */
export function explainKubeFailure(cluster: ArmManagedCluster, err: unknown): KubeAccessError {
  if (err instanceof KubeAccessError) return err;
  const name = cluster.name;
  if (err instanceof KubeError) {
    if (err.kind === 'unauthorized' || err.kind === 'forbidden') {
      return new KubeAccessError('not-authorized', `The API server of ${name} refused NetGuard (${err.status}): ${GRANT_HOW}.`);
    }
    if (err.kind === 'unreachable' || err.kind === 'timeout') {
      const path = isPrivate(cluster)
        ? `${name} is a private cluster: the Function App needs a network path to its API server (VNet integration into a network peered with the cluster's, and the private DNS zone of the API server linked to it)`
        : `check that NetGuard's outbound addresses are within the cluster's authorized IP ranges and that the API server is up`;
      return new KubeAccessError('unreachable', `NetGuard cannot reach the API server of ${name}: ${err.message} ${path}.`, true);
    }
    if (err.kind === 'refused-config') return new KubeAccessError('refused-config', `${name}: ${err.message}`);
    return new KubeAccessError('failed', `Reading the Kubernetes objects of ${name} failed: ${err.message}`, err.transient);
  }
  return new KubeAccessError('failed', `Reading the Kubernetes objects of ${name} failed: ${describeError(err)}`);
}

/**
 * Opens a client on the cluster's API server: address and CA from listClusterUserCredential, NetGuard's
 * own Entra token for the AKS server application. Plain http only to a loopback server while the ARM
 * endpoint itself is the loopback sandbox (its fixed token); a real token never travels unencrypted.
 */
export async function openKubeClient(arm: ArmGateway, cluster: ArmManagedCluster, options: KubeAccessOptions = {}): Promise<KubeClient> {
  if (!cluster.properties?.aadProfile) {
    throw new KubeAccessError(
      'local-accounts',
      `${cluster.name} uses local Kubernetes accounts only (no Microsoft Entra integration), so NetGuard cannot sign in to its API server: ${GRANT_HOW}.`,
    );
  }
  let kubeconfig: string;
  try {
    kubeconfig = await arm.listClusterUserCredential(cluster.id);
  } catch (err) {
    throw new KubeAccessError('failed', `NetGuard could not get the API server address of ${cluster.name} (listClusterUserCredential): ${describeError(err)}`);
  }
  let target;
  try {
    target = readKubeconfig(kubeconfig);
  } catch (err) {
    throw new KubeAccessError('failed', `The kubeconfig of ${cluster.name} is unreadable: ${err instanceof KubeconfigError ? err.message : String(err)}`);
  }
  let server: URL;
  try {
    server = new URL(target.server);
  } catch {
    throw new KubeAccessError('failed', `The kubeconfig of ${cluster.name} names an API server that is not a URL.`);
  }
  const sandbox = arm.kind === 'sandbox';
  if (server.protocol === 'http:' && !(sandbox && isLoopbackHost(server.hostname))) {
    throw new KubeAccessError('refused-config', `${cluster.name}: refusing plain http to the API server ${server.host}; a real token is never sent unencrypted.`);
  }
  let token: string;
  try {
    token = await arm.accessToken(AKS_SERVER_SCOPE);
  } catch (err) {
    throw new KubeAccessError('not-authorized', `NetGuard could not get a token for the AKS server application: ${(err as Error)?.message ?? String(err)}`);
  }
  return new KubeClient({
    server: target.server,
    caPem: target.caPem,
    token,
    plainHttpAllowed: sandbox,
    timeoutMs: options.timeoutMs,
    pageSize: options.pageSize,
    retry: options.retry,
  });
}

/** The two list calls instance-metadata needs, on an open client; failures come back as KubeAccessError. */
export async function readKubeObjects(client: KubeClient, cluster: ArmManagedCluster): Promise<KubeObservation> {
  // Both settle before anything is thrown: a failed list must not leave the other one retrying.
  const [namespaces, policies] = await Promise.allSettled([client.listNamespaces(), client.listNetworkPolicies()]);
  if (namespaces.status === 'rejected') throw explainKubeFailure(cluster, namespaces.reason);
  if (policies.status === 'rejected') throw explainKubeFailure(cluster, policies.reason);
  return { namespaces: namespaces.value, policies: policies.value };
}

/** Opens a client and reads what instance-metadata needs; failures come back as KubeAccessError. */
export async function observeKube(arm: ArmGateway, cluster: ArmManagedCluster, options: KubeAccessOptions = {}): Promise<{ client: KubeClient; observed: KubeObservation }> {
  const client = await openKubeClient(arm, cluster, options);
  try {
    return { client, observed: await readKubeObjects(client, cluster) };
  } catch (err) {
    client.close();
    throw explainKubeFailure(cluster, err);
  }
}
