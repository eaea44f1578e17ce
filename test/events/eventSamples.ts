// Loads Microsoft's published Event Grid samples and rewrites them in code for NetGuard's cases.
// The fixture files are never edited: every variant is a deep copy changed here.
import * as fs from 'fs';
import * as path from 'path';

export const EVENTGRID_DIR = path.join(__dirname, '..', 'fixtures', 'azure', 'eventgrid');

export function samplePath(rel: string): string {
  return path.join(EVENTGRID_DIR, rel);
}

export function sampleText(rel: string): string {
  return fs.readFileSync(samplePath(rel), 'utf8');
}

/** The first (only) event of a published sample array, as a fresh mutable copy. */
export function sampleEvent(rel: string): Record<string, any> {
  const parsed = JSON.parse(sampleText(rel));
  return structuredClone(Array.isArray(parsed) ? parsed[0] : parsed);
}

/** Every published event file (JSON), relative to EVENTGRID_DIR; the validation *response* is not an event. */
export function publishedEventFiles(): string[] {
  const out: string[] = [];
  for (const dir of fs.readdirSync(EVENTGRID_DIR)) {
    for (const f of fs.readdirSync(path.join(EVENTGRID_DIR, dir))) {
      if (f.endsWith('.json') && f !== 'SubscriptionValidationResponse.json') out.push(`${dir}/${f}`);
    }
  }
  return out.sort();
}

export const SUB = '0b1f6471-1bf0-4dda-aec3-5d1b2c3e4f50';
export const NODE_RG = `/subscriptions/${SUB}/resourceGroups/MC_rg-aks_aks1_westeurope`;
export const NSG_ID = `${NODE_RG}/providers/Microsoft.Network/networkSecurityGroups/aks-agentpool-12345678-nsg`;
export const RULE_ID = `${NSG_ID}/securityRules/allow-ssh-from-anywhere`;
export const VNET_ID = `/subscriptions/${SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-aks`;
export const SUBNET_ID = `${VNET_ID}/subnets/snet-nodes`;
export const CLUSTER_ID = `/subscriptions/${SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1`;
export const POOL_ID = `${CLUSTER_ID}/agentPools/userpool2`;

export type SampleSchema = 'eventgrid' | 'cloudevents';

export interface ArmEventVariant {
  verb: 'write' | 'delete';
  schema?: SampleSchema;
  operationName: string;
  resourceId: string;
  id?: string;
}

/**
 * A published ResourceWriteSuccess / ResourceDeleteSuccess sample pointed at another resource and
 * operation: subject, resourceUri, operationName, authorization scope/action and (for deletes) the
 * request URL are rewritten consistently; claims and the rest stay as Microsoft published them.
 */
export function armEvent(v: ArmEventVariant): Record<string, any> {
  const schema = v.schema ?? 'eventgrid';
  const file =
    schema === 'eventgrid'
      ? `eventgrid-schema/subscription_Resource${v.verb === 'write' ? 'Write' : 'Delete'}Success.json`
      : `cloudevents-schema/resource-group_Resource${v.verb === 'write' ? 'Write' : 'Delete'}Success.cloudevents.json`;
  const e = sampleEvent(file);
  e.subject = v.resourceId;
  if (v.id) e.id = v.id;
  e.data.resourceUri = v.resourceId;
  e.data.operationName = v.operationName;
  e.data.resourceProvider = v.operationName.split('/')[0];
  e.data.subscriptionId = SUB;
  e.data.authorization.scope = v.resourceId;
  e.data.authorization.action = v.operationName;
  if (e.data.httpRequest) e.data.httpRequest.url = `https://management.azure.com${v.resourceId}?api-version=2024-05-01`;
  if (schema === 'eventgrid') e.topic = `/subscriptions/${SUB}`;
  else e.source = `/subscriptions/${SUB}`;
  return e;
}
