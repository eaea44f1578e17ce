// ARM misbehaving under the CLI (`sweep`, `handle-event`), in process through runCli against the sandbox
// and a real Azurite: stalls, throttling without Retry-After, and answers lost after Azure applied the
// write. The DESIGN.md invariants "Always end" and "Tell the truth about its own writes", as a user
// sees them: the JSON report, the exit code, the audit rows and the Teams notices queued.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { runCli } from '../../shared/cli/main';
import { decodeNotice, NOTICE_QUEUE } from '../../shared/notify/queueSink';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import { storeFromEnvironment } from '../../shared/store/tables';
import type { RunReport } from '../../shared/types';
import { useAzurite } from '../helpers/azurite';
import { findingsOf, onlyFinding, startSandbox } from '../helpers/sandboxEnv';
import { fleetEvent, netGuardRulesIn, OP, pick, ruleIdOf, seedFleet } from '../functions/eventRig';

const azurite = useAzurite();
let sandbox: ArmSandbox;
let fleet: SeededFleet;
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-arm-faults-'));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedFleet(sandbox); // a subscription of its own: Azure Tables state stays per test
});

afterEach(async () => {
  await sandbox.stop();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** runCli with the sandbox as ARM; short polls and back-off so no test waits real seconds. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, ...env },
    armTuning: { pollIntervalMs: 5, armRetry: { retryDelayInMs: 5, maxRetryDelayInMs: 20, maxRetryAfterInMs: 20 } },
  });
  return { code, stdout, stderr };
}

const report = (r: CliResult) => JSON.parse(r.stdout) as RunReport;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exactPath = (p: string) => new RegExp(`^${escape(p)}$`, 'i');

let fileCounter = 0;
function eventFile(content: unknown): string {
  const file = path.join(tmp, `event-${++fileCounter}.json`);
  fs.writeFileSync(file, JSON.stringify(content));
  return file;
}

describe('Always end', () => {
  test.each(['abc', '0', '-5', '7200'])('AKS_NETGUARD_ARM_TIMEOUT_SECONDS=%s: exit 2 naming the setting, no request', async (value) => {
    const r = await cli(['sweep', '--subscription', fleet.subscriptionId], { AKS_NETGUARD_ARM_TIMEOUT_SECONDS: value });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('AKS_NETGUARD_ARM_TIMEOUT_SECONDS');
    expect(sandbox.countRequests()).toBe(0);
  });

  test('a list GET that never answers: the sweep ends, that subscription is an error naming the stalled call, the other one is judged', async () => {
    const stalled = seedDriftedFleet(sandbox, { subscriptionId: '0f0f0f0f-1111-2222-3333-444444444444' });
    const nsgList = `/subscriptions/${stalled.subscriptionId}/providers/Microsoft.Network/networkSecurityGroups`;
    sandbox.failNext({ method: 'GET', pathPattern: exactPath(nsgList), fault: 'stall', times: Infinity });

    const r = await cli(['sweep', '--json'], { AKS_NETGUARD_SUBSCRIPTIONS: `${stalled.subscriptionId},${fleet.subscriptionId}`, AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '0.2' });
    expect(r.code).toBe(0);
    const out = report(r);
    const failed = out.findings.filter((f) => f.resourceId === `/subscriptions/${stalled.subscriptionId}`);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) {
      expect(f.status).toBe('error');
      expect(f.detail).toContain(stalled.subscriptionId);
      expect(f.detail).toMatch(/did not answer GET .*networkSecurityGroups/);
    }
    // Bounded: the default tries, each given up by the client.
    const stalls = sandbox.findRequests((q) => q.fault === 'stall');
    expect(stalls).toHaveLength(4);
    // The rest of the fleet is judged and repaired as usual.
    for (const c of fleet.clusters) expect(findingsOf(out, c.clusterId)).not.toHaveLength(0);
    expect(onlyFinding(out, pick(fleet, 'b').clusterId, 'node-ssh-deny').action).toBe('remediated');
    expect(out.summary.remediated).toBe(3);
  });

  test('a 429 without Retry-After on a list call is retried: the sweep is as if nothing happened', async () => {
    const nsgList = `/subscriptions/${fleet.subscriptionId}/providers/Microsoft.Network/networkSecurityGroups`;
    sandbox.failNext({ method: 'GET', pathPattern: exactPath(nsgList), status: 429 });

    const r = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId]);
    expect(r.code).toBe(0);
    const out = report(r);
    expect(sandbox.findRequests({ method: 'GET', path: exactPath(nsgList) }).map((q) => q.status)).toEqual([429, 200]);
    expect(out.summary.errors).toBe(0);
    expect(out.summary.resources).toBe(fleet.clusters.length);
    expect(out.summary.remediated).toBe(3);
  });

  test('handle-event: the NSG read stalls; the command ends with exit 1 (Event Grid would redeliver), naming the NSG', async () => {
    const nsgId = pick(fleet, 'a').nsgIds[0];
    sandbox.remove(ruleIdOf(nsgId));
    sandbox.failNext({ method: 'GET', pathPattern: new RegExp(`${escape(nsgId)}(/|$)`, 'i'), fault: 'stall', times: Infinity });
    sandbox.failNext({ method: 'GET', pathPattern: /\/networkSecurityGroups$/i, fault: 'stall', times: Infinity });

    const r = await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))), '--json'], {
      AzureWebJobsStorage: azurite.connectionString,
      AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '0.2',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/redeliver/);
    expect(r.stderr).toMatch(/did not answer GET .*networkSecurityGroups/i);
    expect(sandbox.findRequests((q) => q.method === 'PUT')).toHaveLength(0);
  });
});

describe('Tell the truth about its own writes', () => {
  test('handle-event: the rule PUT is applied but answered 503 (the retry then gets 412): remediated, audited, announced', async () => {
    const a = pick(fleet, 'a');
    const nsgId = a.nsgIds[0];
    const ruleId = ruleIdOf(nsgId);
    sandbox.remove(ruleId);
    sandbox.failNext({ method: 'PUT', pathPattern: exactPath(ruleId), status: 503, afterApplying: true });
    const env = { AzureWebJobsStorage: azurite.connectionString };

    const r = await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleId)), '--json'], env);
    expect(r.code).toBe(0);
    // What happened on the wire: applied-then-503, then the SDK's retry refused as a stale condition.
    const puts = sandbox.findRequests({ method: 'PUT', path: exactPath(ruleId) });
    expect(puts.map((q) => [q.status, !!q.applied])).toEqual([
      [503, true],
      [412, false],
    ]);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);

    const f = onlyFinding(report(r), a.clusterId, 'node-ssh-deny');
    expect(f).toMatchObject({ targetId: nsgId, status: 'drift', action: 'remediated' });
    expect(f.detail).not.toMatch(/someone else/);

    const store = storeFromEnvironment(env)!;
    const audit = (await store.listAudit()).filter((e) => e.targetId.toLowerCase() === nsgId.toLowerCase());
    expect(audit.map((e) => e.event)).toContain('remediated');
    expect(await store.recentRemediations('node-ssh-deny', nsgId, new Date(Date.now() - 3600_000))).toHaveLength(1);

    const queue = new QueueClient(azurite.connectionString, NOTICE_QUEUE, { allowInsecureConnection: true } as object);
    const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
    const notices = peekedMessageItems.map((m) => decodeNotice(m.messageText)).filter((n) => n.kind === 'remediated' && n.finding.targetId.toLowerCase() === nsgId.toLowerCase());
    expect(notices).toHaveLength(1);
  });

  test('sweep: every status poll of an applied cluster update is throttled; NetGuard reads the cluster instead and reports it remediated', async () => {
    const e = pick(fleet, 'e');
    sandbox.failNext({ method: 'GET', pathPattern: /\/providers\/Microsoft\.ContainerService\/locations\/[^/]+\/operations\//i, status: 429, times: Infinity });

    const r = await cli(['sweep', '--json', '--subscription', fleet.subscriptionId], { AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: 'auto' });
    expect(r.code).toBe(0);
    expect(sandbox.findRequests((q) => /\/operations\//i.test(q.path) && q.status === 429).length).toBeGreaterThan(0);
    expect(onlyFinding(report(r), e.clusterId, 'http-application-routing')).toMatchObject({ status: 'drift', action: 'remediated' });
    expect(sandbox.get<ArmManagedCluster>(e.clusterId)!.properties.addonProfiles!.httpApplicationRouting.enabled).toBe(false);
  });
});
