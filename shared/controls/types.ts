// What a control is: data plus pure functions. The engine does all I/O around them.
import type { ArmManagedCluster, SecurityRuleProperties } from '../azure/armTypes';
import type { TopologyIndex } from '../azure/topology';
import type { ControlId, Mode, Severity } from '../types';

/** Everything a control may look at for one cluster. Built by the engine; never fetched by a control. */
export interface ClusterObservation {
  cluster: ArmManagedCluster;
  topology: TopologyIndex;
  /** Last authorized IP ranges NetGuard saw while the cluster was compliant (from the store). */
  baselineAuthorizedRanges?: string[];
  /** AKS_NETGUARD_AUTHORIZED_IP_RANGES. */
  fallbackAuthorizedRanges?: string[];
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

/** A change that only ever restricts access. Serializable (it is stored with an approval). */
export type PlannedChange = SecurityRuleChange | ClusterPropertyChange;

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
 * NetworkPolicy writes in one cluster's namespaces (instance-metadata), each a pure restriction.
 * Not yet in PlannedChange: it joins the union when the engine learns to apply it (the engine reads
 * `before`/`after` of every change today).
 */
export interface KubeNetworkPolicyChange {
  kind: 'kube-network-policy';
  clusterId: string;
  writes: KubeNetworkPolicyWrite[];
  /** Open namespaces no write can fix without widening someone's egress: a person decides. */
  leftToPerson: Array<{ namespace: string; reason: string }>;
  /** True when leftToPerson is not empty. */
  needsPerson: boolean;
  summary: string;
}

/** plan() outcome when a drift cannot be repaired by NetGuard. */
export interface NoPlan {
  kind: 'none';
  reason: string;
}

export interface Control {
  id: ControlId;
  severity: Severity;
  defaultMode: Mode;
  /** One line a person can act on: what the control wants. */
  description: string;
  evaluate(observation: ClusterObservation): Judgement[];
  /** Only called for a non-compliant judgement. */
  plan(judgement: Judgement, observation: ClusterObservation): PlannedChange | NoPlan;
}
