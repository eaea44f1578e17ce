// ARM resource ids: parsing and case-insensitive comparison (ARM treats ids case-insensitively).

export interface ParsedResourceId {
  subscriptionId: string;
  resourceGroup?: string;
  /** e.g. "Microsoft.Network" */
  provider?: string;
  /** type/name pairs after the provider, e.g. [["networkSecurityGroups","nsg1"],["securityRules","r1"]] */
  segments: Array<[string, string]>;
}

export class InvalidResourceIdError extends Error {
  constructor(id: string, why: string) {
    super(`"${id}" is not an Azure resource id: ${why}`);
    this.name = 'InvalidResourceIdError';
  }
}

export function parseResourceId(id: string): ParsedResourceId {
  if (typeof id !== 'string' || !id.startsWith('/')) throw new InvalidResourceIdError(String(id), 'it must start with /subscriptions/');
  const parts = id.split('/').slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length < 2 || parts[0].toLowerCase() !== 'subscriptions' || !parts[1]) {
    throw new InvalidResourceIdError(id, 'it must start with /subscriptions/{id}');
  }
  const out: ParsedResourceId = { subscriptionId: parts[1], segments: [] };
  let i = 2;
  if (parts[i]?.toLowerCase() === 'resourcegroups') {
    if (!parts[i + 1]) throw new InvalidResourceIdError(id, 'the resource group name is missing');
    out.resourceGroup = parts[i + 1];
    i += 2;
  }
  if (parts[i]?.toLowerCase() === 'providers') {
    if (!parts[i + 1]) throw new InvalidResourceIdError(id, 'the provider namespace is missing');
    out.provider = parts[i + 1];
    i += 2;
    while (i < parts.length) {
      out.segments.push([parts[i], parts[i + 1] ?? '']);
      i += 2;
    }
  } else if (i < parts.length) {
    throw new InvalidResourceIdError(id, `unexpected segment "${parts[i]}"`);
  }
  return out;
}

/** "Microsoft.Network/networkSecurityGroups/securityRules" for a rule id; lower-cased. */
export function resourceTypeOf(id: string): string {
  const p = parseResourceId(id);
  if (!p.provider) return p.resourceGroup ? 'resourcegroups' : 'subscriptions';
  return [p.provider, ...p.segments.map(([t]) => t)].join('/').toLowerCase();
}

export function sameId(a: string | undefined, b: string | undefined): boolean {
  return !!a && !!b && a.toLowerCase() === b.toLowerCase();
}

export function idKey(id: string): string {
  return id.toLowerCase();
}

/** The id of the parent resource: a rule's NSG, a subnet's VNet, an agent pool's cluster. */
export function parentId(id: string): string {
  const trimmed = id.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  return parts.slice(0, parts.length - 2).join('/');
}

export function lastSegment(id: string): string {
  const parts = id.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1];
}

export function subscriptionOf(id: string): string {
  return parseResourceId(id).subscriptionId;
}

export function resourceGroupOf(id: string): string {
  const rg = parseResourceId(id).resourceGroup;
  if (!rg) throw new InvalidResourceIdError(id, 'it has no resource group');
  return rg;
}

/** Link to the resource in the Azure portal, for cards and details. */
export function portalUrl(id: string): string {
  return `https://portal.azure.com/#@/resource${id}`;
}

/**
 * Why an id from outside (an event) cannot be followed, or undefined when it is a plain ARM path.
 * The id ends up in a request URL: a "." or ".." segment is collapsed by URL normalisation (so
 * "/subscriptions/.." would reach the tenant level and "managedClusters/." would list the resource
 * group), "?" and "#" start a query or fragment (extra parameters), "%" lets an encoded dot or slash
 * through, and control characters or spaces never occur in ARM names.
 */
export function unsafeIdProblem(id: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const bad = /[?#%\\\u0000-\u0020\u007f-\u009f]/.exec(id);
  if (bad) return `it contains ${describeChar(bad[0])}, which no Azure resource id has`;
  const parts = id.split('/').slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  if (parts.some((p) => p === '')) return 'it has an empty segment ("//")';
  const dots = parts.find((p) => p === '.' || p === '..');
  if (dots !== undefined) return `it has a "${dots}" segment`;
  return undefined;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Why an id is not a resource inside a resource group (the only kind NetGuard re-reads from events):
 * `/subscriptions/{guid}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}]...`.
 */
export function resourceIdShapeProblem(id: string): string | undefined {
  const unsafe = unsafeIdProblem(id);
  if (unsafe) return unsafe;
  let parsed: ParsedResourceId;
  try {
    parsed = parseResourceId(id);
  } catch (err) {
    return err instanceof InvalidResourceIdError ? err.message.replace(/^"[^"]*" is not an Azure resource id: /, '') : String(err);
  }
  if (!GUID.test(parsed.subscriptionId)) return `the subscription "${parsed.subscriptionId}" is not a GUID`;
  if (!parsed.resourceGroup) return 'it names no resource group';
  if (!parsed.provider) return 'it names no provider';
  if (parsed.segments.length === 0) return 'it names no resource type after the provider';
  const unnamed = parsed.segments.find(([type, name]) => !type || !name);
  if (unnamed) return `the name after "${unnamed[0]}" is missing`;
  return undefined;
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  const code = c.charCodeAt(0);
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')})`;
  return `"${c}"`;
}
