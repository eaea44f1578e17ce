// Routing of a parsed event to the one resource NetGuard must re-read. Pure: no I/O, no Azure calls.
// An event is only a hint of where to look (the engine re-reads the live resource), so a route names
// the resource to reconcile, never what changed.

import type { NetGuardEvent } from './parse';
import { HANDLED_EVENT_TYPES, routedKindOf, type RoutedKind } from './operations';
import { parentId, resourceIdShapeProblem, resourceTypeOf } from '../azure/ids';
import { inScope } from '../azure/scope';

export type ReconcileTarget = 'nsg' | 'subnet' | 'vnet' | 'cluster';

export type IgnoreReason =
  /** Not a ResourceWriteSuccess / ResourceDeleteSuccess event. */
  | 'unhandled-event-type'
  /** An ARM operation NetGuard does not react to (storage accounts, subnet deletes, …). */
  | 'unrouted-operation'
  /** Caused by NetGuard's own identity: re-reading would only confirm its own write. */
  | 'own-write'
  /** About a subscription outside AKS_NETGUARD_SUBSCRIPTIONS: NetGuard neither reads nor writes there. */
  | 'out-of-scope'
  /** The resource id is not of the type the operation acts on (parseEvents rejects these; this guards hand-built events). */
  | 'resource-mismatch';

export interface IgnoreRoute {
  kind: 'ignore';
  reason: IgnoreReason;
  /** One sentence for the log. */
  detail: string;
}

export interface ReconcileRoute {
  kind: 'reconcile';
  /** The resource to re-read: the NSG for a rule event, the cluster for an agent pool event. */
  resourceId: string;
  target: ReconcileTarget;
  /** The target itself was deleted (an NSG delete). A rule delete leaves its NSG in place: false. */
  deleted: boolean;
}

export type Route = IgnoreRoute | ReconcileRoute;

export interface RouteOptions {
  /** Object id of NetGuard's own identity (AKS_NETGUARD_PRINCIPAL_ID). */
  principalId?: string;
  /** AKS_NETGUARD_SUBSCRIPTIONS: events about any other subscription are ignored (undefined: no limit). */
  subscriptions?: readonly string[];
}

const HANDLED = new Set<string>(HANDLED_EVENT_TYPES);

/** Where each routed kind leads: rule and agent pool events re-read their parent (NSG, cluster). */
const ROUTE_OF_KIND: Record<RoutedKind, { target: ReconcileTarget; useParent: boolean }> = {
  nsg: { target: 'nsg', useParent: false },
  'security-rule': { target: 'nsg', useParent: true },
  subnet: { target: 'subnet', useParent: false },
  vnet: { target: 'vnet', useParent: false },
  cluster: { target: 'cluster', useParent: false },
  'agent-pool': { target: 'cluster', useParent: true },
};

export function routeEvent(e: NetGuardEvent, opts: RouteOptions = {}): Route {
  if (!HANDLED.has(e.eventType)) {
    return ignore('unhandled-event-type', `event type ${e.eventType} is not one NetGuard handles`);
  }
  // Scope comes before everything that could lead to a read: an event about a subscription NetGuard
  // was not given (or whose subscription cannot be told) is acknowledged and logged, nothing more.
  if (!inScope(e.subscriptionId, opts.subscriptions)) {
    return ignore('out-of-scope', `subscription ${e.subscriptionId ?? '(unknown)'} is not in AKS_NETGUARD_SUBSCRIPTIONS`);
  }
  const kind = routedKindOf(e.operationName);
  if (!kind) {
    return ignore('unrouted-operation', `operation ${e.operationName ?? '(none)'} cannot affect AKS network hardening`);
  }
  if (isOwnWrite(e, opts.principalId)) {
    return ignore('own-write', `caused by NetGuard's own identity ${opts.principalId!.trim()}`);
  }
  const how = ROUTE_OF_KIND[kind];
  // parseEvents rejects these; hand-built events get the same check, so no path follows such an id.
  const unsafe = resourceIdShapeProblem(e.resourceId);
  if (unsafe) return ignore('resource-mismatch', `the resource id "${e.resourceId}" cannot be followed: ${unsafe}`);
  // The operation names the resource type it acts on: ".../securityRules/write" → ".../securityrules".
  const expectedType = e.operationName!.toLowerCase().replace(/\/(write|delete)$/, '');
  let actualType: string;
  try {
    actualType = resourceTypeOf(e.resourceId);
  } catch (err) {
    return ignore('resource-mismatch', err instanceof Error ? err.message : String(err));
  }
  if (actualType !== expectedType) {
    return ignore('resource-mismatch', `operation ${e.operationName} acts on ${expectedType} but the resource id "${e.resourceId}" is a ${actualType}`);
  }
  const resourceId = (how.useParent ? parentId(e.resourceId) : e.resourceId).replace(/\/+$/, '');
  const deleted = !how.useParent && /\/delete$/i.test(e.operationName ?? '');
  return { kind: 'reconcile', resourceId, target: how.target, deleted };
}

/** True when the caller's object id (claims) or role-assignment principal (evidence) is NetGuard's. */
export function isOwnWrite(e: NetGuardEvent, principalId: string | undefined): boolean {
  const own = principalId?.trim().toLowerCase();
  if (!own) return false;
  return [e.caller.objectId, e.caller.principalId].some((id) => id?.trim().toLowerCase() === own);
}

function ignore(reason: IgnoreReason, detail: string): IgnoreRoute {
  return { kind: 'ignore', reason, detail };
}
