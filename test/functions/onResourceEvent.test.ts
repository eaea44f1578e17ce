// The registered Event Grid function, called as the Functions host calls it (an InvocationContext),
// with the real SDK clients against the ARM sandbox and Azurite for state. It must throw only when a
// redelivery can help (Event Grid then retries), and log one structured line per event.
import { InvocationContext } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { onResourceEvent } from '../../functions/onResourceEvent';
import { CLAIM_LEASE_MS, type EventLogLine } from '../../shared/events/handler';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import type { TableStateStore } from '../../shared/store/tables';
import { sampleEvent, sampleText, publishedEventFiles } from '../events/eventSamples';
import { useAzurite } from '../helpers/azurite';
import { freshStore, startSandbox } from '../helpers/sandboxEnv';
import { authorizationFailed, fleetEvent, netGuardRulesIn, OP, pick, ruleIdOf, rulePutsThatTook, runtimeFor, seedFleet, writeRequests } from './eventRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let store: TableStateStore;


beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox);
  store = freshStore(azurite.connectionString);
});

afterEach(async () => {
  await sandbox.stop();
});

interface Invocation {
  context: InvocationContext;
  lines: Array<{ level: string; text: string }>;
  /** The structured per-event lines (JSON with netguard: "event"). */
  events(): EventLogLine[];
  errors(): string[];
}

function invocation(): Invocation {
  const lines: Array<{ level: string; text: string }> = [];
  const context = new InvocationContext({
    functionName: 'onResourceEvent',
    invocationId: randomUUID(),
    logHandler: (level, ...args) => lines.push({ level, text: args.map(String).join(' ') }),
  });
  return {
    context,
    lines,
    events: () =>
      lines
        .filter((l) => l.text.startsWith('{'))
        .map((l) => JSON.parse(l.text))
        .filter((j) => j.netguard === 'event'),
    errors: () => lines.filter((l) => l.level === 'error').map((l) => l.text),
  };
}

function breakNetGuardRuleOfA(): { nsgId: string; event: Record<string, any> } {
  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  return { nsgId, event: fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)) };
}

describe('Microsoft’s published samples through the registered handler', () => {
  const files = publishedEventFiles();

  test.each(files)('%s: acknowledged without a single ARM request', async (file) => {
    const call = invocation();
    // The binding hands the handler one parsed event at a time.
    await expect(onResourceEvent(sampleEvent(file), call.context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    expect(sandbox.countRequests()).toBe(0);
    expect(call.errors()).toEqual([]);
    if (/SubscriptionValidation/.test(file)) {
      expect(call.lines.some((l) => /subscription validation .* acknowledged/.test(l.text))).toBe(true);
    } else {
      expect(call.events().map((e) => e.outcome)).toEqual(['ignored']);
    }
  });

  test('the published CloudEvents sample that is not valid JSON: logged as rejected, not thrown, no request', async () => {
    const call = invocation();
    const text = sampleText('cloudevents-schema/resource-group_ResourceActionSuccess.cloudevents.AS-PUBLISHED-INVALID-JSON.txt');
    await expect(onResourceEvent(text, call.context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    expect(sandbox.countRequests()).toBe(0);
    expect(call.errors()).toEqual([expect.stringMatching(/rejected: not valid JSON.*line \d+, column \d+/)]);
  });
});

describe('drift events through the registered handler', () => {
  test('a rule delete rewritten from the published sample: repaired, one structured log line with ARM calls and ms', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const call = invocation();
    await onResourceEvent(event, call.context, runtimeFor(sandbox, { store }));
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    const [line] = call.events();
    expect(line).toMatchObject({ eventId: event.id, operation: OP.ruleDelete, outcome: 'reconciled', reconciled: [pick(fleet, 'a').clusterId] });
    expect(line.armCalls).toBe(sandbox.countRequests());
    expect(typeof line.ms).toBe('number');
  });

  test('a batch with one malformed and one good event: the good one is processed, the bad one logged, nothing thrown', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const broken = fleetEvent(OP.ruleDelete, ruleIdOf(nsgId));
    delete broken.data.operationName;
    const call = invocation();
    await expect(onResourceEvent([broken, event], call.context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    expect(call.errors()).toEqual([expect.stringContaining(`event 0 (id ${broken.id}): missing data.operationName`)]);
  });

  test('a retryable failure (503 on the rule PUT, more times than the SDK retries): throws; the redelivery succeeds', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const rulePath = new RegExp(`${ruleIdOf(nsgId).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i');
    // retry-after-ms keeps the SDK's own retries quick; 4 failures outlast its default 3 retries.
    sandbox.failNext({ method: 'PUT', pathPattern: rulePath, status: 503, headers: { 'retry-after-ms': '1' }, times: 4 });
    const runtime = runtimeFor(sandbox, { store });

    const first = invocation();
    await expect(onResourceEvent(event, first.context, runtime)).rejects.toThrow(/retryable.*redeliver/i);
    expect(sandbox.countRequests({ method: 'PUT', status: 503 })).toBe(4);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
    expect(first.events()[0]).toMatchObject({ outcome: 'retry' });

    // Event Grid redelivers the same event (same id): it is not taken for a duplicate.
    const second = invocation();
    await expect(onResourceEvent(structuredClone(event), second.context, runtime)).resolves.toBeUndefined();
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
    expect(second.events()[0]).toMatchObject({ eventId: event.id, outcome: 'reconciled' });
  });

  test('429 without Retry-After on a list is retried within the delivery; the event is handled', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const nsgList = /\/providers\/Microsoft\.Network\/networkSecurityGroups$/i;
    sandbox.failNext({ method: 'GET', pathPattern: nsgList, status: 429 });
    await expect(onResourceEvent(event, invocation().context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    expect(sandbox.findRequests({ method: 'GET', path: nsgList }).map((r) => r.status)).toEqual([429, 200]);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('429 without Retry-After on a list, more times than NetGuard retries: the function throws so Event Grid backs off and redelivers', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    sandbox.failNext({ method: 'GET', pathPattern: /\/providers\/Microsoft\.Network\/networkSecurityGroups$/i, status: 429, times: 4 });
    const runtime = runtimeFor(sandbox, { store });
    await expect(onResourceEvent(event, invocation().context, runtime)).rejects.toThrow(/redeliver/);
    expect(writeRequests(sandbox)).toHaveLength(0);
    await expect(onResourceEvent(structuredClone(event), invocation().context, runtime)).resolves.toBeUndefined();
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('403 on the NSG list: logged with the missing permission, not thrown (a retry cannot grant a role)', async () => {
    const { event } = breakNetGuardRuleOfA();
    const sub = fleet.subscriptionId;
    sandbox.failNext({
      method: 'GET',
      pathPattern: /\/providers\/Microsoft\.Network\/networkSecurityGroups$/i,
      status: 403,
      body: authorizationFailed('Microsoft.Network/networkSecurityGroups/read', `/subscriptions/${sub}`),
    });
    const call = invocation();
    await expect(onResourceEvent(event, call.context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    const [line] = call.events();
    expect(line.outcome).toBe('failed');
    expect(line.reason).toContain('Microsoft.Network/networkSecurityGroups/read');
    expect(writeRequests(sandbox)).toHaveLength(0);
    // A fatal outcome is final: the same event again is a no-op.
    sandbox.resetRequests();
    const again = invocation();
    await onResourceEvent(structuredClone(event), again.context, runtimeFor(sandbox, { store }));
    expect(sandbox.countRequests()).toBe(0);
    expect(again.events()[0].outcome).toBe('duplicate');
  });

  test('404 on the rule PUT (the NSG vanished between read and write): recorded as failed, not thrown', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    sandbox.failNext({ method: 'PUT', pathPattern: /securityRules\//i, status: 404 });
    const call = invocation();
    await expect(onResourceEvent(event, call.context, runtimeFor(sandbox, { store }))).resolves.toBeUndefined();
    const [line] = call.events();
    expect(line.outcome).toBe('failed');
    expect(line.reason).toMatch(/404|gone/i);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
  });
});

describe('one event delivered several times at once (Event Grid delivers at least once)', () => {
  test('three concurrent deliveries of one event id: one reconcile and one write; the others make no call to Azure and are not acknowledged before the outcome is known', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const runtime = runtimeFor(sandbox, { store });
    const calls = [invocation(), invocation(), invocation()];
    const results = await Promise.allSettled(calls.map((c) => onResourceEvent(structuredClone(event), c.context, runtime)));

    const lines = calls.flatMap((c) => c.events());
    expect(lines).toHaveLength(3);
    expect(lines.filter((l) => l.outcome === 'reconciled')).toHaveLength(1);
    const others = lines.filter((l) => l.outcome !== 'reconciled');
    for (const l of others) expect(l).toMatchObject({ eventId: event.id, armCalls: 0, outcome: expect.stringMatching(/^(duplicate|retry)$/) });
    // A delivery asked to come back is the one that threw; the one that reconciled did not.
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(others.filter((l) => l.outcome === 'retry').length);
    // One set of writes: not even a refused (412) second attempt, and no approval for a fixed drift.
    expect(writeRequests(sandbox)).toHaveLength(1);
    expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
    expect(await store.listApprovals()).toEqual([]);

    // Event Grid redelivers the ones that threw: now they are plain duplicates.
    sandbox.resetRequests();
    const again = invocation();
    await expect(onResourceEvent(structuredClone(event), again.context, runtime)).resolves.toBeUndefined();
    expect(again.events()[0]).toMatchObject({ outcome: 'duplicate', armCalls: 0 });
    expect(sandbox.countRequests()).toBe(0);
  });

  test('while another delivery holds the claim the event is retried, not acknowledged; once that delivery gives it back, the redelivery reconciles', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const runtime = runtimeFor(sandbox, { store });
    const now = new Date();
    const other = await store.claimEvent(event.id, now, { doneSince: new Date(now.getTime() - 1000), leaseSince: new Date(now.getTime() - 1000) });
    if (typeof other === 'string') throw new Error(`expected a fresh claim, got ${other}`);

    const early = invocation();
    await expect(onResourceEvent(structuredClone(event), early.context, runtime)).rejects.toThrow(/redeliver/);
    expect(early.events()[0]).toMatchObject({ outcome: 'retry', armCalls: 0 });
    expect(sandbox.countRequests()).toBe(0);

    await store.releaseEvent(other); // the other delivery failed and gave the id back
    const redelivery = invocation();
    await onResourceEvent(structuredClone(event), redelivery.context, runtime);
    expect(redelivery.events()[0]).toMatchObject({ eventId: event.id, outcome: 'reconciled' });
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });

  test('a claim abandoned longer than the lease (a crashed instance) is taken over by a redelivery', async () => {
    const { nsgId, event } = breakNetGuardRuleOfA();
    const longAgo = new Date(Date.now() - CLAIM_LEASE_MS - 60_000);
    const stale = await store.claimEvent(event.id, longAgo, { doneSince: longAgo, leaseSince: longAgo });
    expect(typeof stale).toBe('object');
    const call = invocation();
    await onResourceEvent(structuredClone(event), call.context, runtimeFor(sandbox, { store }));
    expect(call.events()[0]).toMatchObject({ outcome: 'reconciled' });
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
  });
});
