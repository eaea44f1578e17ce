// Kubernetes NetworkPolicy semantics, as far as the instance metadata service (IMDS) is concerned.
// Pure functions: no I/O. Objects from the API are parsed with zod at the edge (parseNetworkPolicy);
// everything after that works on the parsed shape.
//
// Kubernetes rules applied here (networking.k8s.io/v1):
// - A pod is egress-isolated when at least one NetworkPolicy of its namespace whose effective
//   policyTypes include Egress selects it. Its allowed egress is the union of the egress rules of all
//   such policies; policies only ever add allowances, never subtract.
// - policyTypes absent: ["Ingress"], plus "Egress" when the policy has egress rules (the API server's
//   defaulting checks len(egress) != 0, so `egress: []` without policyTypes isolates nothing).
// - A rule with no `to` (absent or empty) admits every destination; with no `ports`, every port.
// - An ipBlock admits its cidr minus every `except`; a namespaceSelector/podSelector peer names pods,
//   which IMDS is not; a named port resolves on the destination pod, which IMDS is not.
//
// Whenever something cannot be read or reasoned about, the answer leans to "open": a wrong "open"
// sends a namespace to a person, a wrong "closed" would leave the node's identity exposed.
import { z } from 'zod';
import { AddressSet, tryParseAddressPrefix } from '../net/addressSet';

export const IMDS_ADDRESS = '169.254.169.254';
export const IMDS_PORT = 80;
export const IMDS_PROTOCOL = 'TCP';
/** The fixed name of NetGuard's own policy: a retry finds its earlier work instead of adding another. */
export const OWN_POLICY_NAME = 'aks-netguard-deny-instance-metadata';

// ---- parsing at the edge ----------------------------------------------------------------------

const requirementSchema = z.object({
  key: z.string(),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).nullish(),
});

const labelSelectorSchema = z.object({
  matchLabels: z.record(z.string()).nullish(),
  matchExpressions: z.array(requirementSchema).nullish(),
});

const ipBlockSchema = z.object({ cidr: z.string(), except: z.array(z.string()).nullish() });

const peerSchema = z.object({
  ipBlock: ipBlockSchema.nullish(),
  namespaceSelector: labelSelectorSchema.nullish(),
  podSelector: labelSelectorSchema.nullish(),
});

const portSchema = z.object({
  protocol: z.string().nullish(),
  port: z.union([z.number().int(), z.string()]).nullish(),
  endPort: z.number().int().nullish(),
});

const egressRuleSchema = z.object({ to: z.array(peerSchema).nullish(), ports: z.array(portSchema).nullish() });

const specSchema = z.object({
  podSelector: labelSelectorSchema.nullish(),
  policyTypes: z.array(z.string()).nullish(),
  ingress: z.array(z.unknown()).nullish(),
  egress: z.array(egressRuleSchema).nullish(),
});

const metadataSchema = z
  .object({
    name: z.string().min(1),
    namespace: z.string().min(1),
    resourceVersion: z.string().optional(),
    uid: z.string().optional(),
  })
  .passthrough();

const policySchema = z.object({ metadata: metadataSchema, spec: specSchema.nullish() }).passthrough();

export type LabelSelector = z.infer<typeof labelSelectorSchema>;
export type NetworkPolicyPeer = z.infer<typeof peerSchema>;
export type NetworkPolicyPort = z.infer<typeof portSchema>;
export type EgressRule = z.infer<typeof egressRuleSchema>;
export type NetworkPolicySpec = z.infer<typeof specSchema>;

/** A NetworkPolicy as NetGuard reads it; `raw` is the object exactly as the API answered. */
export interface NetworkPolicy {
  name: string;
  namespace: string;
  resourceVersion?: string;
  spec: NetworkPolicySpec;
  raw: Record<string, unknown>;
}

/** A policy whose shape NetGuard cannot read: it is assumed to be an egress policy that admits IMDS. */
export interface UnreadablePolicy {
  name: string;
  namespace: string;
  unreadable: string;
  raw: unknown;
}

export type ObservedPolicy = NetworkPolicy | UnreadablePolicy;

export function isUnreadable(p: ObservedPolicy): p is UnreadablePolicy {
  return 'unreadable' in p;
}

/** Parses one item of a NetworkPolicy list; never throws. */
export function parseNetworkPolicy(raw: unknown): ObservedPolicy {
  const parsed = policySchema.safeParse(raw);
  if (parsed.success) {
    const { metadata, spec } = parsed.data;
    return { name: metadata.name, namespace: metadata.namespace, resourceVersion: metadata.resourceVersion, spec: spec ?? {}, raw: raw as Record<string, unknown> };
  }
  const meta = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const issue = parsed.error.issues[0];
  return {
    name: typeof meta?.name === 'string' ? meta.name : '(unnamed)',
    namespace: typeof meta?.namespace === 'string' ? meta.namespace : '',
    unreadable: `${issue.path.join('.') || 'object'}: ${issue.message}`,
    raw,
  };
}

// ---- policy types --------------------------------------------------------------------------------

/** policyTypes after the API server's defaulting. */
export function effectivePolicyTypes(spec: NetworkPolicySpec): Set<'Ingress' | 'Egress'> {
  const declared = spec.policyTypes ?? [];
  if (declared.length > 0) {
    const out = new Set<'Ingress' | 'Egress'>();
    for (const t of declared) if (t === 'Ingress' || t === 'Egress') out.add(t);
    return out;
  }
  const out = new Set<'Ingress' | 'Egress'>(['Ingress']);
  if ((spec.egress ?? []).length > 0) out.add('Egress');
  return out;
}

export function isEgressPolicy(p: ObservedPolicy): boolean {
  return isUnreadable(p) || effectivePolicyTypes(p.spec).has('Egress');
}

// ---- label selectors -----------------------------------------------------------------------------

type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
interface Atom {
  key: string;
  op: Operator;
  values: string[];
}

/** A selector as a conjunction of requirements (matchLabels k: v is `k In [v]`). */
function atomsOf(selector: LabelSelector | null | undefined): Atom[] {
  const atoms: Atom[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) atoms.push({ key, op: 'In', values: [value] });
  for (const r of selector?.matchExpressions ?? []) atoms.push({ key: r.key, op: r.operator, values: r.values ?? [] });
  return atoms;
}

const NEGATION: Record<Operator, Operator> = { In: 'NotIn', NotIn: 'In', Exists: 'DoesNotExist', DoesNotExist: 'Exists' };

/** What the requirements chosen so far say about one label key. */
interface KeyConstraint {
  /** true: the label must be present; false: it must be absent. */
  present?: boolean;
  /** The value must be one of these (implies present). */
  oneOf?: Set<string>;
  /** The value, when present, must be none of these. */
  noneOf: Set<string>;
}

type Constraints = ReadonlyMap<string, KeyConstraint>;

/**
 * Adds one requirement; undefined when no label set can meet them all. Label values are arbitrary
 * strings, so "present and none of a finite list" is always satisfiable.
 */
function constrain(state: Constraints, atom: Atom): Constraints | undefined {
  const prev = state.get(atom.key) ?? { noneOf: new Set<string>() };
  const next: KeyConstraint = { present: prev.present, oneOf: prev.oneOf ? new Set(prev.oneOf) : undefined, noneOf: new Set(prev.noneOf) };
  switch (atom.op) {
    case 'In':
      if (prev.present === false) return undefined;
      next.present = true;
      next.oneOf = new Set(atom.values.filter((v) => !next.oneOf || next.oneOf.has(v)));
      break;
    case 'NotIn':
      for (const v of atom.values) next.noneOf.add(v);
      break;
    case 'Exists':
      if (prev.present === false) return undefined;
      next.present = true;
      break;
    case 'DoesNotExist':
      if (prev.present === true) return undefined;
      next.present = false;
      break;
  }
  if (next.oneOf && ![...next.oneOf].some((v) => !next.noneOf.has(v))) return undefined;
  const out = new Map(state);
  out.set(atom.key, next);
  return out;
}

/** Whether a selector matches the given labels (Kubernetes: NotIn and DoesNotExist match an absent key). */
export function selectorMatches(selector: LabelSelector | null | undefined, labels: Record<string, string>): boolean {
  return atomsOf(selector).every((a) => {
    const has = Object.prototype.hasOwnProperty.call(labels, a.key);
    switch (a.op) {
      case 'In':
        return has && a.values.includes(labels[a.key]);
      case 'NotIn':
        return !has || !a.values.includes(labels[a.key]);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
}

/** Whether some pod (some label set) could match the selector. */
export function selectorSatisfiable(selector: LabelSelector | null | undefined): boolean {
  let state: Constraints | undefined = new Map();
  for (const atom of atomsOf(selector)) {
    state = constrain(state, atom);
    if (!state) return false;
  }
  return true;
}

const COVERAGE_SEARCH_BUDGET = 20_000;

/**
 * Whether every possible pod is matched by at least one of the selectors. A pod escapes them all
 * when it breaks one requirement of each selector, so this searches for a consistent choice of one
 * broken requirement per selector. `{}` has no requirement to break: it covers everything. Past
 * the search budget the answer is false (not proven covered).
 */
export function selectorsCoverEveryPod(selectors: ReadonlyArray<LabelSelector | null | undefined>): boolean {
  const conjunctions = selectors.map(atomsOf);
  if (conjunctions.some((atoms) => atoms.length === 0)) return true;
  let steps = 0;
  const escapes = (i: number, state: Constraints): boolean | 'budget' => {
    if (i === conjunctions.length) return true;
    for (const atom of conjunctions[i]) {
      if (++steps > COVERAGE_SEARCH_BUDGET) return 'budget';
      const next = constrain(state, { ...atom, op: NEGATION[atom.op] });
      if (!next) continue;
      const found = escapes(i + 1, next);
      if (found !== false) return found;
    }
    return false;
  };
  return escapes(0, new Map()) === false;
}

// ---- egress rules --------------------------------------------------------------------------------

export interface Destination {
  address: string;
  protocol: string;
  port: number;
}

export const IMDS: Destination = { address: IMDS_ADDRESS, protocol: IMDS_PROTOCOL, port: IMDS_PORT };

/** A CIDR as an address set; undefined when it does not parse (the API server would have refused it). */
function cidrSet(cidr: string): AddressSet | undefined {
  return tryParseAddressPrefix(cidr) ? AddressSet.fromPrefixes([cidr]) : undefined;
}

/** An ipBlock as an address set (cidr minus except); undefined when any part does not parse. */
export function ipBlockSet(block: { cidr: string; except?: string[] | null }): AddressSet | undefined {
  const whole = cidrSet(block.cidr);
  if (!whole) return undefined;
  let set = whole;
  for (const e of block.except ?? []) {
    const cut = cidrSet(e);
    if (!cut) return undefined;
    set = set.subtract(cut);
  }
  return set;
}

function peerAdmits(peer: NetworkPolicyPeer, address: string): boolean {
  // Selector peers name pods; only an ipBlock can name a node-local address such as IMDS.
  if (!peer.ipBlock) return false;
  const set = ipBlockSet(peer.ipBlock);
  if (!set) return true; // unreadable: assume it admits
  return set.containsAll(AddressSet.fromPrefixes([address]));
}

function portAdmits(p: NetworkPolicyPort, protocol: string, port: number): boolean {
  if ((p.protocol ?? 'TCP').toUpperCase() !== protocol.toUpperCase()) return false;
  if (p.port === undefined || p.port === null) return true;
  let start: number;
  if (typeof p.port === 'number') start = p.port;
  else if (/^\d+$/.test(p.port)) start = Number(p.port); // not valid as a name; read it as the number it spells
  else return false; // a named port resolves on the destination pod; IMDS is no pod
  if (p.endPort !== undefined && p.endPort !== null) return start <= port && port <= p.endPort;
  return start === port;
}

export function ruleAdmits(rule: EgressRule, dest: Destination): boolean {
  const to = rule.to ?? [];
  const ports = rule.ports ?? [];
  const addressOk = to.length === 0 || to.some((peer) => peerAdmits(peer, dest.address));
  const portOk = ports.length === 0 || ports.some((p) => portAdmits(p, dest.protocol, dest.port));
  return addressOk && portOk;
}

/** Whether the policy's egress rules admit the destination (for the pods it selects). */
export function policyAdmits(p: ObservedPolicy, dest: Destination = IMDS): boolean {
  if (isUnreadable(p)) return true;
  if (!effectivePolicyTypes(p.spec).has('Egress')) return false;
  return (p.spec.egress ?? []).some((rule) => ruleAdmits(rule, dest));
}

// ---- a namespace ---------------------------------------------------------------------------------

export interface NamespaceVerdict {
  namespace: string;
  /** Some pod can reach the destination. */
  open: boolean;
  /** Some possible pod is selected by no egress policy, so nothing restricts its egress. */
  unisolatedPods: boolean;
  /** Egress policies that select some pod and admit the destination (unreadable ones included). */
  admittedBy: string[];
  /** Every egress policy of the namespace, NetGuard's own included. */
  egressPolicies: string[];
  /** Egress policies other than NetGuard's own: when there are any, a fix needs a person. */
  foreignEgressPolicies: string[];
  /** NetGuard's own policy as found, if any. */
  own?: ObservedPolicy;
}

function selectorOf(p: ObservedPolicy): LabelSelector | null | undefined {
  return isUnreadable(p) ? {} : p.spec.podSelector;
}

/** Judges one namespace from all the policies in it (policies of other namespaces are ignored). */
export function judgeNamespace(namespace: string, policies: readonly ObservedPolicy[], dest: Destination = IMDS): NamespaceVerdict {
  const here = policies.filter((p) => p.namespace === namespace);
  const egress = here.filter(isEgressPolicy);
  const admittedBy = egress.filter((p) => selectorSatisfiable(selectorOf(p)) && policyAdmits(p, dest)).map((p) => p.name);
  const unisolatedPods = !selectorsCoverEveryPod(egress.map(selectorOf));
  const own = here.find((p) => p.name === OWN_POLICY_NAME);
  return {
    namespace,
    open: unisolatedPods || admittedBy.length > 0,
    unisolatedPods,
    admittedBy,
    egressPolicies: egress.map((p) => p.name),
    foreignEgressPolicies: egress.filter((p) => p.name !== OWN_POLICY_NAME).map((p) => p.name),
    own,
  };
}

// ---- NetGuard's own policy -------------------------------------------------------------------------

/** The spec of NetGuard's policy: every pod may reach everything but IMDS (pods and DNS included). */
export function ownPolicySpec(): NetworkPolicySpec & Record<string, unknown> {
  return {
    podSelector: {},
    policyTypes: ['Egress'],
    egress: [
      {
        to: [
          { ipBlock: { cidr: '0.0.0.0/0', except: [`${IMDS_ADDRESS}/32`] } },
          { ipBlock: { cidr: '::/0' } },
          // Some engines (Cilium) do not apply ipBlock to pod addresses: without this, in-cluster
          // traffic, DNS included, would stop.
          { namespaceSelector: {} },
        ],
      },
    ],
  };
}

export function ownPolicyObject(namespace: string, resourceVersion?: string): Record<string, unknown> {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: OWN_POLICY_NAME,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { 'app.kubernetes.io/managed-by': 'aks-netguard' },
      annotations: {
        'aks-netguard/purpose': `Keeps pods from the node's instance metadata service (${IMDS_ADDRESS}), which hands out the node's managed-identity tokens.`,
      },
    },
    spec: ownPolicySpec(),
  };
}

const isEmptySelector = (s: LabelSelector | null | undefined) => atomsOf(s).length === 0;

/**
 * Whether replacing `current` (NetGuard's policy as a person left it) by the original widens any
 * pod's egress or ingress, assuming no other egress policy in the namespace (the only case where
 * NetGuard puts its policy back). Anything not proven harmless counts as widening.
 */
export function restoringOwnPolicyWidensNothing(current: ObservedPolicy): boolean {
  if (isUnreadable(current)) return false;
  const selects = selectorSatisfiable(current.spec.podSelector);
  if (!selects) return true; // it restricts nobody today; the original only restricts
  const types = effectivePolicyTypes(current.spec);
  // The original has no Ingress type: putting it back would lift an ingress isolation someone added.
  if (types.has('Ingress')) return false;
  if (!types.has('Egress')) return true;
  // The pods it selects may reach only what its rules admit; the original must admit no more.
  const allPorts = (current.spec.egress ?? []).filter((r) => (r.ports ?? []).length === 0);
  if (allPorts.some((r) => (r.to ?? []).length === 0)) return true;
  let addresses = AddressSet.empty();
  let everyPod = false;
  for (const rule of allPorts) {
    for (const peer of rule.to ?? []) {
      if (peer.ipBlock) {
        const set = ipBlockSet(peer.ipBlock);
        if (set) addresses = addresses.union(set);
      } else if (peer.namespaceSelector && isEmptySelector(peer.namespaceSelector) && isEmptySelector(peer.podSelector)) {
        everyPod = true;
      }
    }
  }
  const originalAddresses = AddressSet.all().subtract(AddressSet.fromPrefixes([`${IMDS_ADDRESS}/32`]));
  return everyPod && addresses.containsAll(originalAddresses);
}

/** Whether a policy is NetGuard's own, unchanged (spec equal to the original). */
export function isOriginalOwnPolicy(p: ObservedPolicy): boolean {
  if (isUnreadable(p) || p.name !== OWN_POLICY_NAME) return false;
  return canonical(p.spec) === canonical(ownPolicySpec());
}

/** JSON with sorted keys and nulls/empty arrays dropped, so equal specs compare equal however they are spelled. */
function canonical(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x === null || x === undefined || (Array.isArray(x) && x.length === 0)) continue;
        out[k] = norm(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}
