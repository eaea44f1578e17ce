// "Stay in scope" (DESIGN.md, Safety invariants): NetGuard reads and writes only in the subscriptions
// of AKS_NETGUARD_SUBSCRIPTIONS when it is set. The event path checks this before anything else; this
// pipeline policy is the structural backstop on every ARM request, whatever path built it (sweep,
// event, approval, verify queue): a request whose URL does not name an in-scope subscription is
// refused before it leaves the process.
import type { PipelinePolicy, PipelineRequest } from '@azure/core-rest-pipeline';

export const SCOPE_POLICY_NAME = 'netguardSubscriptionScope';

/** Raised instead of sending a request outside the scope; never retried (the engine's classifyError: fatal). */
export class OutOfScopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutOfScopeError';
  }
}

/** True when `subscriptionId` is in scope; everything is when no scope is configured. */
export function inScope(subscriptionId: string | undefined, scope: readonly string[] | undefined): boolean {
  if (!scope || scope.length === 0) return true;
  if (!subscriptionId) return false;
  const wanted = subscriptionId.trim().toLowerCase();
  return scope.some((s) => s.trim().toLowerCase() === wanted);
}

/**
 * Why a request URL may not be sent, or undefined. The path is judged twice: as written (a "." or
 * ".." segment would be collapsed by URL normalisation into another resource, so it is refused) and
 * as the HTTP client will send it (normalised), which must start with /subscriptions/{in-scope id}.
 * With no scope configured, only the dot segments are refused (tenant-level calls such as listing
 * subscriptions are then legitimate).
 */
export function outOfScopeReason(url: string, scope: readonly string[] | undefined): string | undefined {
  const rawPath = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0];
  const segments = rawPath.split('/');
  if (segments.some((s) => s === '.' || s === '..' || /^(%2e|\.){1,2}$/i.test(s))) {
    return `the request path ${rawPath} has a "." or ".." segment`;
  }
  if (!scope || scope.length === 0) return undefined;
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    return `the request URL is not a URL`;
  }
  const m = /^\/subscriptions\/([^/]+)(?:\/|$)/i.exec(pathname);
  if (!m) return `the request ${pathname} names no subscription, and AKS_NETGUARD_SUBSCRIPTIONS limits NetGuard to ${scope.join(', ')}`;
  let subscription: string;
  try {
    subscription = decodeURIComponent(m[1]);
  } catch {
    subscription = m[1];
  }
  if (!inScope(subscription, scope)) {
    return `subscription ${subscription} is outside AKS_NETGUARD_SUBSCRIPTIONS (${scope.join(', ')})`;
  }
  return undefined;
}

/** The pipeline policy (added by ArmGateway.prepare on every client it builds). */
export function subscriptionScopePolicy(scope: readonly string[] | undefined): PipelinePolicy {
  return {
    name: SCOPE_POLICY_NAME,
    sendRequest: (request: PipelineRequest, next) => {
      const reason = outOfScopeReason(request.url, scope);
      if (reason) return Promise.reject(new OutOfScopeError(`NetGuard refused to send ${request.method} to Azure: ${reason}.`));
      return next(request);
    },
  };
}
