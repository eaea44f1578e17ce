// Shared set-up for the end-to-end tests of the event path (the registered function, processEventBatch,
// `handle-event` and `serve`): the ARM sandbox seeded with the drifted fleet, a runtime wired exactly as
// createRuntime wires it, and Microsoft's published Event Grid samples rewritten to point at the fleet.
import { randomUUID } from 'node:crypto';
import type { ArmNetworkSecurityGroup, ArmSecurityRule } from '../../shared/azure/armTypes';
import { createRuntime, type Runtime } from '../../shared/runtime';
import type { ArmSandbox, RecordedRequest } from '../../testkit/armServer';
import { NETGUARD_SSH_RULE_NAME, seedDriftedFleet, type SeededCluster, type SeededFleet } from '../../testkit/fleet';
import type { StateStore } from '../../shared/store/types';
import { armEvent, type SampleSchema } from '../events/eventSamples';
import { isWrite } from '../helpers/sandboxEnv';

export { NETGUARD_SSH_RULE_NAME };

export const OP = {
  nsgWrite: 'Microsoft.Network/networkSecurityGroups/write',
  nsgDelete: 'Microsoft.Network/networkSecurityGroups/delete',
  ruleWrite: 'Microsoft.Network/networkSecurityGroups/securityRules/write',
  ruleDelete: 'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  vnetWrite: 'Microsoft.Network/virtualNetworks/write',
  subnetWrite: 'Microsoft.Network/virtualNetworks/subnets/write',
  clusterWrite: 'Microsoft.ContainerService/managedClusters/write',
  poolWrite: 'Microsoft.ContainerService/managedClusters/agentPools/write',
} as const;

/** The person who keeps changing things in these tests, put into the published sample's claims. */
export const CHANGER = { oid: '9a8b7c6d-1111-4222-8333-944455556666', name: 'Dana Operator', upn: 'dana@contoso.example' };

export interface FleetEventOptions {
  id?: string;
  schema?: SampleSchema;
  /** Claims to set (object id, name, UPN); default CHANGER. */
  caller?: { oid?: string; name?: string; upn?: string };
}

/**
 * A published ResourceWrite/DeleteSuccess sample pointed at a fleet resource: armEvent rewrites the
 * resource and operation; here the subscription and the caller's claims are set to match the scenario.
 */
export function fleetEvent(operationName: string, resourceId: string, options: FleetEventOptions = {}): Record<string, any> {
  const verb = /\/delete$/i.test(operationName) ? 'delete' : 'write';
  const e = armEvent({ verb, operationName, resourceId, schema: options.schema, id: options.id ?? randomUUID() });
  const subscriptionId = resourceId.split('/')[2];
  e.data.subscriptionId = subscriptionId;
  if (e.topic !== undefined) e.topic = `/subscriptions/${subscriptionId}`;
  if (e.source !== undefined) e.source = `/subscriptions/${subscriptionId}`;
  const caller = { ...CHANGER, ...(options.caller ?? {}) };
  const claims = e.data.claims as Record<string, string>;
  claims['http://schemas.microsoft.com/identity/claims/objectidentifier'] = caller.oid;
  claims.name = caller.name;
  claims['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'] = caller.upn;
  return e;
}

export function ruleIdOf(nsgId: string, name = NETGUARD_SSH_RULE_NAME): string {
  return `${nsgId}/securityRules/${name}`;
}

export function pick(fleet: SeededFleet, label: string): SeededCluster {
  const c = fleet.clusters.find((x) => x.label === label);
  if (!c) throw new Error(`no cluster ${label} in the fleet`);
  return c;
}

/**
 * The drifted demo fleet in a subscription of its own: state kept in Azure Tables (the duplicate
 * ledger, the topology cache) is per subscription, so tests sharing one Azurite stay independent.
 */
export function seedFleet(sandbox: ArmSandbox): SeededFleet {
  return seedDriftedFleet(sandbox, { subscriptionId: randomUUID() });
}

/** A runtime built by createRuntime (as the function, CLI and serve build it), pointed at the sandbox. */
export function runtimeFor(
  sandbox: ArmSandbox,
  options: { store?: StateStore; env?: Record<string, string>; clock?: () => Date } = {},
): Runtime {
  return createRuntime({
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...(options.env ?? {}) },
    store: options.store,
    clock: options.clock,
    // Network writes finish on the first poll in the sandbox; a short interval keeps tests quick.
    pollIntervalMs: 5,
    // Retries back off for milliseconds, not seconds (no test waits real time).
    armRetry: { retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  });
}

export function writeRequests(sandbox: ArmSandbox): RecordedRequest[] {
  return sandbox.findRequests(isWrite);
}

/** Successful PUTs of one security rule (injected failures and 412s excluded). */
export function rulePutsThatTook(sandbox: ArmSandbox, nsgId: string, name = NETGUARD_SSH_RULE_NAME): RecordedRequest[] {
  const path = ruleIdOf(nsgId, name).toLowerCase();
  return sandbox.findRequests((r) => r.method === 'PUT' && r.path.toLowerCase() === path && r.status >= 200 && r.status < 300);
}

/** The rules of an NSG named like NetGuard's, read straight from the sandbox state. */
export function netGuardRulesIn(sandbox: ArmSandbox, nsgId: string): ArmSecurityRule[] {
  const nsg = sandbox.get<ArmNetworkSecurityGroup>(nsgId);
  if (!nsg) throw new Error(`NSG ${nsgId} not in the sandbox`);
  return (nsg.properties.securityRules ?? []).filter((r) => r.name.toLowerCase() === NETGUARD_SSH_RULE_NAME);
}

/** A 403 body as ARM words it, naming the missing action. */
export function authorizationFailed(action: string, scope: string): unknown {
  return {
    error: {
      code: 'AuthorizationFailed',
      message: `The client '${CHANGER.oid}' with object id '${CHANGER.oid}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid.`,
    },
  };
}
