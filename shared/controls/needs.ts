// The permissions behind each thing a control may declare: what reading a part of the world takes,
// and what making a kind of change takes. shared/azure/permissions.ts adds up the declarations of the
// controls in CONTROLS into NetGuard's custom role (ARM actions and Kubernetes data actions), so a
// control that reads or changes nothing new adds nothing to the role.
import type { ChangeKind, ObservedPart } from './types';

/** One RBAC action, spelled as Microsoft publishes it, and the call of NetGuard that needs it. */
export interface RoleAction {
  action: string;
  reason: string;
}

export interface Permissions {
  /** ARM (control plane) actions. */
  actions: readonly RoleAction[];
  /** Data actions on the cluster's Kubernetes API (Azure RBAC for Kubernetes authorization). */
  dataActions: readonly RoleAction[];
}

const CLUSTER_READ: RoleAction = {
  action: 'Microsoft.ContainerService/managedClusters/read',
  reason: 'List the clusters of a subscription and re-read one before judging, writing and verifying it.',
};

/** What the engine reads for every run, whatever the controls: the subscriptions and the clusters. */
export const ENGINE_PERMISSIONS: Permissions = {
  actions: [
    {
      action: 'Microsoft.Resources/subscriptions/read',
      reason: 'List the subscriptions to sweep when AKS_NETGUARD_SUBSCRIPTIONS is empty (GET /subscriptions).',
    },
    CLUSTER_READ,
  ],
  dataActions: [],
};

export const READ_PERMISSIONS: Record<ObservedPart, Permissions> = {
  'cluster-properties': { actions: [CLUSTER_READ], dataActions: [] },
  'nsg-topology': {
    actions: [
      {
        action: 'Microsoft.Network/networkSecurityGroups/read',
        reason: 'List the NSGs of a subscription and re-read one to judge SSH reachability of the nodes.',
      },
      {
        action: 'Microsoft.Network/virtualNetworks/read',
        reason: 'List the virtual networks of a subscription: their subnets (nested) tie node pools to NSGs.',
      },
    ],
    dataActions: [],
  },
  'kubernetes-objects': {
    actions: [
      {
        action: 'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action',
        reason: "Get the API server address and CA of a cluster (its user kubeconfig; NetGuard signs in with its own Entra token, never the kubeconfig's user).",
      },
    ],
    dataActions: [
      { action: 'Microsoft.ContainerService/managedClusters/namespaces/read', reason: 'List the namespaces of a cluster (GET /api/v1/namespaces).' },
      {
        action: 'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/read',
        reason: 'List the NetworkPolicies of every namespace (GET /apis/networking.k8s.io/v1/networkpolicies).',
      },
    ],
  },
};

export const CHANGE_PERMISSIONS: Record<ChangeKind, Permissions> = {
  'security-rule': {
    actions: [
      {
        action: 'Microsoft.Network/networkSecurityGroups/securityRules/read',
        reason: "Read NetGuard's deny rule (its ETag) before repairing it, and the rule the write returns.",
      },
      {
        action: 'Microsoft.Network/networkSecurityGroups/securityRules/write',
        reason: 'Create or repair the rule aks-netguard-deny-node-ssh, or narrow an Allow that shadows it (approved).',
      },
      { action: 'Microsoft.Network/locations/operations/read', reason: 'Follow a security rule write (its Azure-AsyncOperation status) to the end.' },
    ],
    dataActions: [],
  },
  'cluster-property': {
    actions: [
      CLUSTER_READ,
      {
        action: 'Microsoft.ContainerService/managedClusters/write',
        reason: 'Send a drifted cluster back as read with only the drifted property restricted (authorized ranges, HTTP routing add-on).',
      },
      {
        action: 'Microsoft.ContainerService/locations/operations/read',
        reason: 'Follow a cluster update (its Azure-AsyncOperation status) to the end before verifying it.',
      },
    ],
    dataActions: [],
  },
  'kube-network-policy': {
    actions: [],
    dataActions: [
      {
        action: 'Microsoft.ContainerService/managedClusters/networking.k8s.io/networkpolicies/write',
        reason: 'Create aks-netguard-deny-instance-metadata in a namespace with no egress policy, or put it back as NetGuard wrote it.',
      },
    ],
  },
};

/** The permissions the given controls' declarations add up to, each action once, in a stable order. */
export function permissionsOf(controls: ReadonlyArray<{ needs: { reads: readonly ObservedPart[]; changes: readonly ChangeKind[] } }>): {
  actions: RoleAction[];
  dataActions: RoleAction[];
} {
  const parts: Permissions[] = [ENGINE_PERMISSIONS];
  for (const c of controls) {
    for (const r of c.needs.reads) parts.push(READ_PERMISSIONS[r]);
    for (const k of c.needs.changes) parts.push(CHANGE_PERMISSIONS[k]);
  }
  const once = (list: RoleAction[]) => [...new Map(list.map((a) => [a.action.toLowerCase(), a])).values()];
  return { actions: once(parts.flatMap((p) => p.actions)), dataActions: once(parts.flatMap((p) => p.dataActions)) };
}
