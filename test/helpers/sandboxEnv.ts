// Shared set-up for the engine and CLI end-to-end tests: an ArmSandbox driven through the real SDK
// clients (ArmGateway), optionally a real Azurite store, and an independent way to check an NSG.
import type { ArmGateway as ArmGatewayType } from '../../shared/azure/arm';
import { ArmGateway } from '../../shared/azure/arm';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmVirtualNetwork } from '../../shared/azure/armTypes';
import { loadSettings, type Settings } from '../../shared/config';
import { Engine } from '../../shared/engine/engine';
import { AddressSet } from '../../shared/net/addressSet';
import { evaluateNsgAccess, rulesOfNsg, type NsgDecision } from '../../shared/net/nsgEvaluator';
import { ArmSandbox, type RecordedRequest } from '../../testkit/armServer';
import { TableStateStore } from '../../shared/store/tables';
import type { Finding, RunReport } from '../../shared/types';

export const WRITE_METHODS = ['PUT', 'PATCH', 'POST', 'DELETE'];

/** A request that changes something: ARM's POST list actions (listClusterUserCredential) only read. */
export function isWrite(r: RecordedRequest): boolean {
  if (r.method.toUpperCase() === 'POST' && /\/list[A-Za-z]+$/.test(r.path.split('?')[0])) return false;
  return WRITE_METHODS.includes(r.method.toUpperCase());
}

/** Write requests the sandbox received, optionally only those whose path starts with a resource id. */
export function writesTo(sandbox: ArmSandbox, resourceId?: string): RecordedRequest[] {
  const prefix = resourceId?.toLowerCase();
  return sandbox.findRequests((r) => isWrite(r) && (!prefix || r.path.toLowerCase() === prefix || r.path.toLowerCase().startsWith(`${prefix}/`)));
}

/** A gateway with short polls and retry delays, so fault tests stay fast (no wall-clock asserts). */
export function gatewayFor(sandbox: ArmSandbox, maxRetries?: number): ArmGatewayType {
  return new ArmGateway({
    endpoint: sandbox.endpoint,
    pollIntervalMs: 5,
    // Retry-After is honoured up to a cap: the cap keeps a test's "Retry-After: 1" to milliseconds.
    retryOptions: { retryDelayInMs: 10, maxRetryDelayInMs: 50, maxRetryAfterInMs: 50, ...(maxRetries !== undefined ? { maxRetries } : {}) },
  });
}

export function settingsFor(sandbox: ArmSandbox, env: Record<string, string> = {}): Settings {
  return loadSettings({ AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...env });
}

let prefixCounter = 0;
/** A store on its own tables (a unique prefix), so tests sharing one Azurite never see each other's rows. */
export function freshStore(connectionString: string): TableStateStore {
  prefixCounter++;
  const prefix = `e2e${process.pid}x${Date.now().toString(36)}x${prefixCounter}`.replace(/[^A-Za-z0-9]/g, '');
  return TableStateStore.fromConnectionString(connectionString, { tablePrefix: prefix });
}

export interface EngineRig {
  engine: Engine;
  arm: ArmGatewayType;
  settings: Settings;
  store?: TableStateStore;
  warnings: string[];
}

export function engineFor(
  sandbox: ArmSandbox,
  opts: { env?: Record<string, string>; store?: TableStateStore; maxRetries?: number } = {},
): EngineRig {
  const settings = settingsFor(sandbox, opts.env);
  const arm = gatewayFor(sandbox, opts.maxRetries);
  const warnings: string[] = [];
  const engine = new Engine({ arm, settings, store: opts.store, warn: (l) => warnings.push(l) });
  return { engine, arm, settings, store: opts.store, warnings };
}

/** Findings of one cluster (optionally one control), ids compared case-insensitively. */
export function findingsOf(report: RunReport, clusterId: string, control?: Finding['control']): Finding[] {
  return report.findings.filter((f) => f.resourceId.toLowerCase() === clusterId.toLowerCase() && (!control || f.control === control));
}

export function onlyFinding(report: RunReport, clusterId: string, control: Finding['control']): Finding {
  const found = findingsOf(report, clusterId, control);
  if (found.length !== 1) throw new Error(`expected one ${control} finding for ${clusterId}, got ${found.length}: ${JSON.stringify(found)}`);
  return found[0];
}

function subnetPrefixesOf(vnet: ArmVirtualNetwork, subnetId: string): string[] {
  const subnet = (vnet.properties.subnets ?? []).find((s) => s.id.toLowerCase() === subnetId.toLowerCase());
  if (!subnet) throw new Error(`subnet ${subnetId} not in ${vnet.id}`);
  return [subnet.properties.addressPrefix, ...(subnet.properties.addressPrefixes ?? [])].filter((p): p is string => !!p);
}

/**
 * Independent judgement of SSH to a cluster's nodes: reads the NSG and VNet straight from the sandbox
 * state (not through NetGuard) and evaluates inbound TCP/22 from every AKS subnet to the node subnet.
 */
export function sshDecisionInSandbox(sandbox: ArmSandbox, nsgId: string, nodeSubnetId: string, sourcePrefixes?: string[]): NsgDecision {
  const nsg = sandbox.get<ArmNetworkSecurityGroup>(nsgId);
  if (!nsg) throw new Error(`NSG ${nsgId} not in the sandbox`);
  const vnetId = nodeSubnetId.replace(/\/subnets\/[^/]+$/i, '');
  const vnet = sandbox.get<ArmVirtualNetwork>(vnetId);
  if (!vnet) throw new Error(`VNet ${vnetId} not in the sandbox`);
  const destinations = AddressSet.fromPrefixes(subnetPrefixesOf(vnet, nodeSubnetId));
  const sources = AddressSet.fromPrefixes(sourcePrefixes ?? subnetPrefixesOf(vnet, nodeSubnetId));
  return evaluateNsgAccess(rulesOfNsg(nsg), { direction: 'Inbound', protocol: 'Tcp', port: 22, sources, destinations }, {
    virtualNetwork: vnet.properties.addressSpace?.addressPrefixes ?? [],
  }).decision;
}

/** Deep copy with one path removed (to compare a written cluster with the one read, minus the change). */
export function withoutPath<T>(value: T, path: string[]): T {
  const copy = structuredClone(value) as Record<string, any>;
  let node = copy;
  for (const key of path.slice(0, -1)) {
    if (node[key] === undefined) return copy as T;
    node = node[key];
  }
  delete node[path[path.length - 1]];
  return copy as T;
}

export function getPath(value: unknown, path: string[]): unknown {
  let node: any = value;
  for (const key of path) node = node?.[key];
  return node;
}

export function clusterIn(sandbox: ArmSandbox, id: string): ArmManagedCluster {
  const c = sandbox.get<ArmManagedCluster>(id);
  if (!c) throw new Error(`cluster ${id} not in the sandbox`);
  return c;
}

export async function startSandbox(): Promise<ArmSandbox> {
  return ArmSandbox.start({ lroPolls: 1 });
}
