// The Azure RBAC actions NetGuard's identity needs, and how each ARM request maps to one. The custom
// role in infra/ is generated from NETGUARD_ROLE_ACTIONS (scripts/gen-infra.ts), and a test drives the
// real ArmGateway against the sandbox to prove the list is exactly what the code uses: nothing missing,
// nothing extra. NetGuard holds write access to network security, so every entry must earn its place.
// The list itself is not written here: it adds up the controls' declared needs (shared/controls/needs.ts).
import { CONTROLS } from '../controls/index';
import { permissionsOf, type RoleAction } from '../controls/needs';

export type { RoleAction } from '../controls/needs';

export const NETGUARD_ROLE_NAME = 'AKS NetGuard';

export const NETGUARD_ROLE_DESCRIPTION =
  'Least privilege for AKS NetGuard: read AKS clusters, NSGs and virtual networks; write NSG security rules and managed clusters (restrictions only); read namespaces and write NetworkPolicies (restrictions only).';

// Derived from what the controls in CONTROLS declare they read and change (shared/controls/needs.ts).
const DERIVED = permissionsOf(CONTROLS);

export const NETGUARD_ROLE_ACTIONS: ReadonlyArray<RoleAction> = DERIVED.actions;

/** The Kubernetes data actions (Azure RBAC for Kubernetes authorization), from the same declarations. */
export const NETGUARD_ROLE_DATA_ACTIONS: ReadonlyArray<RoleAction> = DERIVED.dataActions;

// RBAC compares actions case-insensitively; paths often arrive lower-cased (ids from events, nextLinks).
// Known actions are given back in their published spelling so they can be compared and shown as-is.
const CANONICAL = new Map<string, string>(
  [
    ...NETGUARD_ROLE_ACTIONS.map((a) => a.action),
    'Microsoft.Resources/subscriptions/resourceGroups/read',
    'Microsoft.ContainerService/locations/operationresults/read',
    'Microsoft.Network/locations/operationResults/read',
    'Microsoft.Network/networkSecurityGroups/write',
    'Microsoft.Network/networkSecurityGroups/delete',
    'Microsoft.Network/networkSecurityGroups/securityRules/delete',
    'Microsoft.Network/virtualNetworks/write',
    'Microsoft.Network/virtualNetworks/subnets/read',
    'Microsoft.Network/virtualNetworks/subnets/write',
    'Microsoft.ContainerService/managedClusters/delete',
    'Microsoft.ContainerService/managedClusters/agentPools/read',
    'Microsoft.ContainerService/managedClusters/agentPools/write',
    'Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action',
  ].map((a) => [a.toLowerCase(), a]),
);

const canonical = (action: string) => CANONICAL.get(action.toLowerCase()) ?? action;

function verbOf(method: string): 'read' | 'write' | 'delete' | undefined {
  switch (method.toUpperCase()) {
    case 'GET':
    case 'HEAD':
      return 'read';
    case 'PUT':
    case 'PATCH':
      return 'write';
    case 'DELETE':
      return 'delete';
    default:
      return undefined;
  }
}

/**
 * The RBAC action an ARM request needs, e.g. `PUT …/networkSecurityGroups/n/securityRules/r` →
 * `Microsoft.Network/networkSecurityGroups/securityRules/write`. `path` is the request path (a full
 * URL is accepted; the query is ignored). A POST to `…/{name}/{verb}` needs `…/{verb}/action`.
 * Returns undefined for a path that is not an ARM resource path.
 */
export function actionForRequest(method: string, path: string): string | undefined {
  const bare = path.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+/i, '').split(/[?#]/)[0];
  const segments = bare.split('/').filter(Boolean);
  if (segments.length === 0 || segments[0].toLowerCase() !== 'subscriptions') return undefined;

  const isPost = method.toUpperCase() === 'POST';
  const verb = verbOf(method);
  if (!verb && !isPost) return undefined;

  const providers = segments.map((s) => s.toLowerCase()).lastIndexOf('providers');
  if (providers < 0) {
    // /subscriptions[/{id}[/resourceGroups[/{name}]]]
    if (isPost) return undefined;
    if (segments.length <= 2) return canonical(`Microsoft.Resources/subscriptions/${verb}`);
    if (segments[2].toLowerCase() === 'resourcegroups' && segments.length <= 4) {
      return canonical(`Microsoft.Resources/subscriptions/resourceGroups/${verb}`);
    }
    return undefined;
  }

  const namespace = segments[providers + 1];
  if (!namespace) return undefined;
  // After the namespace: type, name, type, name, … (a collection ends on a type).
  const rest = segments.slice(providers + 2);
  if (isPost) {
    // …/{type}/{name}/{verb}: the verb follows a name, so it sits at an even position after the pairs.
    if (rest.length < 3 || rest.length % 2 === 0) return undefined;
    const types = rest.slice(0, -1).filter((_, i) => i % 2 === 0);
    return canonical([namespace, ...types, rest[rest.length - 1], 'action'].join('/'));
  }
  const types = rest.filter((_, i) => i % 2 === 0);
  if (types.length === 0) return undefined;
  return canonical([namespace, ...types, verb].join('/'));
}

/** True when `action` is in NETGUARD_ROLE_ACTIONS (case-insensitive, as RBAC compares). */
export function roleAllows(action: string): boolean {
  const wanted = action.toLowerCase();
  return NETGUARD_ROLE_ACTIONS.some((a) => a.action.toLowerCase() === wanted);
}
