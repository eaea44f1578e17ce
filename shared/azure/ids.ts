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
