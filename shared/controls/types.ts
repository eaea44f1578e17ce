// What a control is: data plus pure functions. The engine does all I/O around them, and learns from
// each control's `needs` what to read for it, which kinds of change it may plan, and (through
// ./needs.ts) which permissions those take. Nothing in the engine knows a control by its id.
import type { ArmManagedCluster, SecurityRuleProperties } from '../azure/armTypes';
import type { TopologyIndex } from '../azure/topology';
import type { KubeObservation } from '../kube/access';
import type { ControlId, Mode, Severity } from '../types';

/**
 * The parts of the world a control may read:
 * - `cluster-properties`: the managed cluster resource as ARM returns it (re-read by a cluster event);
 * - `nsg-topology`: the cluster's subnets, the NSGs on them and the VNets (re-read by a network event);
 * - `kubernetes-objects`: namespaces and NetworkPolicies through the cluster's API server (sweep only:
 *   no event reports them).
 */
export type ObservedPart = 'cluster-properties' | 'nsg-topology' | 'kubernetes-objects';

export const OBSERVED_PARTS: readonly ObservedPart[] = ['cluster-properties', 'nsg-topology', 'kubernetes-objects'];

/** Everything a control may look at for one cluster. Built by the engine; never fetched by a control. */
export interface ClusterObservation {
  cluster: ArmManagedCluster;
  topology: TopologyIndex;
  /** The control's stored baseline (e.g. the last authorized IP ranges seen while compliant), when it declares one. */
  baselineAuthorizedRanges?: string[];
  /** AKS_NETGUARD_AUTHORIZED_IP_RANGES. */
  fallbackAuthorizedRanges?: string[];
  /**
   * The cluster's Kubernetes objects, for controls that read `kubernetes-objects` (sweep only), or
   * the access error whose message says how to grant access; absent when no control needed them.
   */
  kube?: KubeObservation | { error: Error };
  /** AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES. */
  excludedNamespaces?: readonly string[];
}

/** The verdict of one control on one target of one cluster. */
export interface Judgement {
  control: ControlId;
  clusterId: string;
  /** The NSG (or bare node subnet) for node-ssh-deny, else the cluster. */
  targetId: string;
  compliant: boolean;
  /** One sentence a person can act on (what is wrong, or why it is fine). */
  detail: string;
  /** Tags that count for mode and exemption, strongest first (NSG tags before cluster tags). */
  tagSources: Array<Record<string, string> | undefined>;
}

/**
 * A change that only ever restricts access. Serializable (it is stored with an approval). Each kind
 * has its applier, write-gate rule and verification in shared/engine/changeKinds.ts and its
 * permissions in ./needs.ts; the compiler asks for both when a kind is added here.
 */
export type PlannedChange = SecurityRuleChange | ClusterPropertyChange | KubeNetworkPolicyChange;
export type ChangeKind = PlannedChange['kind'];

export interface SecurityRuleChange {
  kind: 'security-rule';
  nsgId: string;
  ruleName: string;
  /** undefined: create with If-None-Match: *; else update with If-Match on this ETag. */
  ifMatch?: string;
  before?: SecurityRuleProperties;
  after: SecurityRuleProperties;
  /** True when the change alters someone's access (narrowing an Allow): never applied without a person. */
  needsPerson: boolean;
  summary: string;
}

export interface ClusterPropertyChange {
  kind: 'cluster-property';
  clusterId: string;
  /** Path inside the cluster resource, e.g. ["properties","apiServerAccessProfile","authorizedIPRanges"]. */
  path: string[];
  before: unknown;
  after: unknown;
  /** The cluster's ETag as read: the write carries it in If-Match. */
  ifMatch?: string;
  needsPerson: boolean;
  summary: string;
}

/** One NetworkPolicy write: a create (POST), or a replace (PUT) carrying the resourceVersion that was read. */
export interface KubeNetworkPolicyWrite {
  namespace: string;
  name: string;
  method: 'create' | 'replace';
  /** replace only: the write fails with 409 when the policy changed since. */
  resourceVersion?: string;
  /** The spec as read (replace only). */
  before?: unknown;
  /** The whole object to send. */
  after: Record<string, unknown>;
}

/**
 * NetworkPolicy writes in one cluster's namespaces (instance-metadata), each a pure restriction, and
 * the open namespaces only a person can close. The writes need no person; `leftToPerson` always does
 * (NetGuard never writes there, approved or not).
 */
export interface KubeNetworkPolicyChange {
  kind: 'kube-network-policy';
  clusterId: string;
  writes: KubeNetworkPolicyWrite[];
  /** Open namespaces no write can fix without widening someone's egress: a person decides. */
  leftToPerson: Array<{ namespace: string; reason: string }>;
  /** True when leftToPerson is not empty. */
  needsPerson: boolean;
  /** The policies as read where they are replaced (for the audit trail). */
  before?: unknown;
  /** The objects written (for the audit trail and the card). */
  after: unknown;
  summary: string;
}

/** plan() outcome when a drift cannot be repaired by NetGuard. */
export interface NoPlan {
  kind: 'none';
  reason: string;
}

/** What a control needs from the engine; the engine reads and grants nothing else for it. */
export interface ControlNeeds {
  /** What it looks at. A control is judged by an event only when the event re-read all of it. */
  reads: readonly ObservedPart[];
  /** The kinds of change plan() may return. */
  changes: readonly ChangeKind[];
  /**
   * For a control that reads `kubernetes-objects`: whether a given cluster needs them at all (the
   * cluster alone may settle it). Absent: every cluster does.
   */
  kubernetesObjectsWanted?(cluster: ArmManagedCluster): boolean;
  /**
   * A known-good value the engine stores while the control finds the cluster compliant and hands
   * back in `baselineAuthorizedRanges` (api-authorized-ranges restores the last good ranges).
   */
  baseline?: { knownGood(cluster: ArmManagedCluster): string[] | undefined };
}

export interface Control {
  id: ControlId;
  severity: Severity;
  defaultMode: Mode;
  /** One line a person can act on: what the control wants. */
  description: string;
  needs: ControlNeeds;
  evaluate(observation: ClusterObservation): Judgement[];
  /** Only called for a non-compliant judgement. */
  plan(judgement: Judgement, observation: ClusterObservation): PlannedChange | NoPlan;
}
