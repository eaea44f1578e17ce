import { parseEvents, type NetGuardEvent } from '../../shared/events/parse';
import { routeEvent, type Route } from '../../shared/events/route';
import { ROUTED_OPERATIONS } from '../../shared/events/operations';
import {
  armEvent,
  CLUSTER_ID,
  NSG_ID,
  POOL_ID,
  RULE_ID,
  sampleEvent,
  sampleText,
  SUBNET_ID,
  VNET_ID,
  type SampleSchema,
} from './eventSamples';

const NETGUARD_PRINCIPAL = '6c1f0d3e-7a2b-4c5d-9e8f-0a1b2c3d4e5f';

function parseOne(raw: unknown): NetGuardEvent {
  const { events } = parseEvents(raw);
  expect(events).toHaveLength(1);
  return events[0];
}

function routeOf(verb: 'write' | 'delete', operationName: string, resourceId: string, schema: SampleSchema = 'eventgrid'): Route {
  return routeEvent(parseOne(armEvent({ verb, operationName, resourceId, schema })), { principalId: NETGUARD_PRINCIPAL });
}

describe('routing the published samples rewritten for NetGuard resources', () => {
  const cases: Array<[string, 'write' | 'delete', string, string, Route]> = [
    ['NSG write', 'write', 'Microsoft.Network/networkSecurityGroups/write', NSG_ID, { kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: false }],
    ['NSG delete', 'delete', 'Microsoft.Network/networkSecurityGroups/delete', NSG_ID, { kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: true }],
    ['security rule write → its NSG', 'write', 'Microsoft.Network/networkSecurityGroups/securityRules/write', RULE_ID, { kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: false }],
    // The NSG survives a rule delete; the rule being gone is exactly the drift to find.
    ['security rule delete → its NSG, not deleted', 'delete', 'Microsoft.Network/networkSecurityGroups/securityRules/delete', RULE_ID, { kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: false }],
    ['subnet write', 'write', 'Microsoft.Network/virtualNetworks/subnets/write', SUBNET_ID, { kind: 'reconcile', resourceId: SUBNET_ID, target: 'subnet', deleted: false }],
    ['VNet write', 'write', 'Microsoft.Network/virtualNetworks/write', VNET_ID, { kind: 'reconcile', resourceId: VNET_ID, target: 'vnet', deleted: false }],
    ['managed cluster write', 'write', 'Microsoft.ContainerService/managedClusters/write', CLUSTER_ID, { kind: 'reconcile', resourceId: CLUSTER_ID, target: 'cluster', deleted: false }],
    ['agent pool write → its cluster', 'write', 'Microsoft.ContainerService/managedClusters/agentPools/write', POOL_ID, { kind: 'reconcile', resourceId: CLUSTER_ID, target: 'cluster', deleted: false }],
  ];

  describe.each<SampleSchema>(['eventgrid', 'cloudevents'])('%s schema', (schema) => {
    it.each(cases)('%s', (_name, verb, operation, resourceId, expected) => {
      expect(routeOf(verb, operation, resourceId, schema)).toEqual(expected);
    });
  });

  it('matches operation names and resource types case-insensitively, as ARM does', () => {
    const lowerOp = routeOf('write', 'microsoft.network/networksecuritygroups/securityrules/write', RULE_ID.replace('/securityRules/', '/SECURITYRULES/'));
    expect(lowerOp).toEqual({ kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: false });
    const agentpools = routeOf('write', 'Microsoft.ContainerService/ManagedClusters/AgentPools/write', POOL_ID.replace('managedClusters', 'ManagedClusters'));
    expect(agentpools).toMatchObject({ kind: 'reconcile', target: 'cluster' });
    expect((agentpools as { resourceId: string }).resourceId.toLowerCase()).toBe(CLUSTER_ID.toLowerCase());
  });

  it('reconciles something for every operation in the shared list (the infra filter comes from it)', () => {
    const idFor: Record<string, string> = {
      nsg: NSG_ID, 'security-rule': RULE_ID, subnet: SUBNET_ID, vnet: VNET_ID, cluster: CLUSTER_ID, 'agent-pool': POOL_ID,
    };
    for (const { operation, kind } of ROUTED_OPERATIONS) {
      const verb = operation.endsWith('/delete') ? 'delete' : 'write';
      expect(routeOf(verb, operation, idFor[kind])).toMatchObject({ kind: 'reconcile' });
    }
  });
});

describe('unrelated events are ignored (zero calls to Azure)', () => {
  it.each([
    'eventgrid-schema/subscription_ResourceWriteSuccess.json',
    'eventgrid-schema/subscription_ResourceDeleteSuccess.json',
    'eventgrid-schema/resource-group_ResourceWriteSuccess.json',
    'eventgrid-schema/resource-group_ResourceDeleteSuccess.json',
    'cloudevents-schema/resource-group_ResourceWriteSuccess.cloudevents.json',
    'cloudevents-schema/resource-group_ResourceDeleteSuccess.cloudevents.json',
    'sdk-testdata/azure-sdk-for-java_ResourceWriteSuccessEvent.json',
    'sdk-testdata/azure-sdk-for-java_ResourceDeleteSuccessEvent.json',
  ])('%s (published storage / event-subscription operation)', (file) => {
    const route = routeEvent(parseOne(sampleText(file)), {});
    expect(route).toMatchObject({ kind: 'ignore', reason: 'unrouted-operation' });
  });

  it.each([
    'eventgrid-schema/subscription_ResourceActionSuccess.json',
    'eventgrid-schema/resource-group_ResourceActionSuccess.json',
    'sdk-testdata/azure-sdk-for-java_ResourceActionSuccessEvent.json',
  ])('%s (an action event, not a write or delete)', (file) => {
    expect(routeEvent(parseOne(sampleText(file)), {})).toMatchObject({ kind: 'ignore', reason: 'unhandled-event-type' });
  });

  it('ignores a subnet delete (not in the list: the subnet and its attachment are gone with it)', () => {
    expect(routeOf('delete', 'Microsoft.Network/virtualNetworks/subnets/delete', SUBNET_ID)).toMatchObject({ kind: 'ignore', reason: 'unrouted-operation' });
  });

  it('ignores a failed write even when the operation is a routed one', () => {
    const failed = armEvent({ verb: 'write', operationName: 'Microsoft.Network/networkSecurityGroups/write', resourceId: NSG_ID });
    failed.eventType = 'Microsoft.Resources.ResourceWriteFailure';
    expect(routeEvent(parseOne(failed), {})).toMatchObject({ kind: 'ignore', reason: 'unhandled-event-type' });
  });
});

describe('own writes', () => {
  function ruleWriteWith(mutate: (e: Record<string, any>) => void): NetGuardEvent {
    const e = armEvent({ verb: 'write', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write', resourceId: RULE_ID });
    mutate(e);
    return parseOne(e);
  }

  it('skips an event whose token object id is NetGuard (compared case-insensitively)', () => {
    const e = ruleWriteWith((raw) => {
      raw.data.claims['http://schemas.microsoft.com/identity/claims/objectidentifier'] = NETGUARD_PRINCIPAL.toUpperCase();
    });
    expect(routeEvent(e, { principalId: NETGUARD_PRINCIPAL })).toMatchObject({ kind: 'ignore', reason: 'own-write' });
    // Without the setting the same event is reconciled (and must then end as a no-op in the engine).
    expect(routeEvent(e, {})).toMatchObject({ kind: 'reconcile', resourceId: NSG_ID });
    expect(routeEvent(e, { principalId: '  ' })).toMatchObject({ kind: 'reconcile' });
  });

  it('skips an event whose short oid claim is NetGuard', () => {
    const e = ruleWriteWith((raw) => {
      delete raw.data.claims['http://schemas.microsoft.com/identity/claims/objectidentifier'];
      raw.data.claims.oid = NETGUARD_PRINCIPAL;
    });
    expect(routeEvent(e, { principalId: NETGUARD_PRINCIPAL })).toMatchObject({ kind: 'ignore', reason: 'own-write' });
  });

  it('skips an event whose authorization evidence names NetGuard as the principal', () => {
    // The published action sample carries a service principal's evidence; lift it onto a rule write.
    const evidence = sampleEvent('eventgrid-schema/resource-group_ResourceActionSuccess.json').data.authorization.evidence;
    const e = ruleWriteWith((raw) => {
      raw.data.authorization.evidence = { ...evidence, principalId: NETGUARD_PRINCIPAL };
    });
    expect(e.caller.objectId).toBe('{ID}');
    expect(routeEvent(e, { principalId: NETGUARD_PRINCIPAL })).toMatchObject({ kind: 'ignore', reason: 'own-write' });
  });

  it('skips NetGuard found in string-encoded claims (the Java SDK form)', () => {
    const java = sampleEvent('sdk-testdata/azure-sdk-for-java_ResourceDeleteSuccessEvent.json');
    java.subject = RULE_ID;
    java.data.resourceUri = RULE_ID;
    java.data.operationName = 'Microsoft.Network/networkSecurityGroups/securityRules/delete';
    java.data.claims = JSON.stringify({ ...JSON.parse(java.data.claims), oid: NETGUARD_PRINCIPAL });
    const e = parseOne(java);
    expect(routeEvent(e, { principalId: NETGUARD_PRINCIPAL })).toMatchObject({ kind: 'ignore', reason: 'own-write' });
    expect(routeEvent(e, { principalId: 'someone-else' })).toEqual({ kind: 'reconcile', resourceId: NSG_ID, target: 'nsg', deleted: false });
  });

  it('does not skip a person whose app id happens to equal the principal id setting', () => {
    // appid is the client id, not an object id: it must not count as NetGuard.
    const e = ruleWriteWith((raw) => {
      raw.data.claims.appid = NETGUARD_PRINCIPAL;
    });
    expect(routeEvent(e, { principalId: NETGUARD_PRINCIPAL })).toMatchObject({ kind: 'reconcile' });
  });
});

describe('hand-built events the parser would have rejected', () => {
  it('ignores a rule operation whose resource id is not a rule, instead of re-reading the wrong parent', () => {
    const e = parseOne(armEvent({ verb: 'write', operationName: 'Microsoft.Network/networkSecurityGroups/write', resourceId: NSG_ID }));
    const mismatched: NetGuardEvent = { ...e, operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write' };
    expect(routeEvent(mismatched, {})).toMatchObject({ kind: 'ignore', reason: 'resource-mismatch' });
    expect(routeEvent({ ...e, resourceId: 'nsg1' }, {})).toMatchObject({ kind: 'ignore', reason: 'resource-mismatch' });
  });
});

describe('scope (AKS_NETGUARD_SUBSCRIPTIONS)', () => {
  const SUB_OF_SAMPLES = NSG_ID.split('/')[2];
  const event = () => parseOne(armEvent({ verb: 'write', operationName: 'Microsoft.Network/networkSecurityGroups/securityRules/write', resourceId: RULE_ID }));

  it('ignores an event about another subscription, before anything else', () => {
    const route = routeEvent(event(), { subscriptions: ['11111111-2222-4333-8444-555555555555'] });
    expect(route).toMatchObject({ kind: 'ignore', reason: 'out-of-scope' });
  });

  it('routes an event in scope, the subscription compared case-insensitively', () => {
    expect(routeEvent(event(), { subscriptions: ['11111111-2222-4333-8444-555555555555', SUB_OF_SAMPLES.toUpperCase()] })).toMatchObject({ kind: 'reconcile', resourceId: NSG_ID });
    expect(routeEvent(event(), {})).toMatchObject({ kind: 'reconcile' });
  });

  it('an event whose subscription cannot be told is out of scope when a scope is set', () => {
    const e = { ...event(), subscriptionId: undefined };
    expect(routeEvent(e, { subscriptions: [SUB_OF_SAMPLES] })).toMatchObject({ kind: 'ignore', reason: 'out-of-scope' });
  });

  it('a hand-built event (not from parseEvents) with an id that would change the URL is not followed', () => {
    const e = { ...event(), resourceId: `${NSG_ID}/securityRules/..` };
    expect(routeEvent(e)).toMatchObject({ kind: 'ignore', reason: 'resource-mismatch' });
  });
});
