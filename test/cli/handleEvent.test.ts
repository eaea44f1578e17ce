// `aks-netguard handle-event` in process (runCli), configured only through the environment as a user
// would: the ARM sandbox as AKS_NETGUARD_ARM_ENDPOINT and Azurite as AzureWebJobsStorage. Microsoft's
// published Event Grid samples are passed as files, unchanged or rewritten in code for NetGuard.
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import type { ArmManagedCluster } from '../../shared/azure/armTypes';
import { KubeSandbox } from '../../testkit/kubeServer';
import { CONTROL_IDS, type RunReport } from '../../shared/types';
import { publishedEventFiles, samplePath } from '../events/eventSamples';
import { useCliRig, type CliResult } from '../helpers/cliRig';
import { onlyFinding } from '../helpers/sandboxEnv';
import { fleetEvent, netGuardRulesIn, OP, pick, ruleIdOf, rulePutsThatTook, writeRequests } from '../functions/eventRig';

const rig = useCliRig('handle-event');
let sandbox: ArmSandbox;
let fleet: SeededFleet;
beforeEach(() => {
  ({ sandbox, fleet } = rig);
});
const { cli, eventFile } = rig;

function report(r: CliResult): RunReport {
  return JSON.parse(r.stdout) as RunReport;
}

function deleteRuleOfA(): string {
  const nsgId = pick(fleet, 'a').nsgIds[0];
  expect(sandbox.remove(ruleIdOf(nsgId))).toBe(true);
  return nsgId;
}

describe('the published samples, unchanged', () => {
  test.each(publishedEventFiles())('%s: exit 0, acknowledged with zero requests to ARM', async (file) => {
    const r = await cli(['handle-event', samplePath(file), '--json']);
    expect(r.code).toBe(0);
    expect(sandbox.countRequests()).toBe(0);
    expect(report(r).findings).toEqual([]);
    if (/SubscriptionValidation/.test(file)) expect(r.stderr).toMatch(/Subscription validation event acknowledged/);
  });

  test('the published CloudEvents sample that is not valid JSON: exit 2, a clear message, zero requests, nothing on stdout', async () => {
    const file = samplePath('cloudevents-schema/resource-group_ResourceActionSuccess.cloudevents.AS-PUBLISHED-INVALID-JSON.txt');
    const r = await cli(['handle-event', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/malformed event input: not valid JSON.*\(line \d+, column \d+\)/);
    expect(r.stdout).toBe('');
    expect(sandbox.countRequests()).toBe(0);
  });

  test('a batch with one malformed event: exit 2 and nothing processed, not even the good event', async () => {
    const nsgId = deleteRuleOfA();
    const broken = fleetEvent(OP.ruleDelete, ruleIdOf(nsgId));
    broken.data.claims = '{not json';
    const r = await cli(['handle-event', eventFile([fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)), broken])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`event 1 (id ${broken.id}): data.claims is a string but not valid JSON`);
    expect(sandbox.countRequests()).toBe(0);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(0);
  });
});

describe('samples rewritten for NetGuard resources', () => {
  test('a rule deleted from an AKS subnet’s NSG: handle-event repairs it (exit 0, remediated in --json)', async () => {
    const nsgId = deleteRuleOfA();
    const r = await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))), '--json']);
    expect(r.code).toBe(0);
    expect(onlyFinding(report(r), pick(fleet, 'a').clusterId, 'node-ssh-deny')).toMatchObject({ targetId: nsgId, status: 'drift', action: 'remediated' });
    expect(report(r).summary).toMatchObject({ resources: 1, remediated: 1 });
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);
    // One structured line per event on stderr.
    const line = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('{"netguard":"event"'))!);
    expect(line).toMatchObject({ outcome: 'reconciled', operation: OP.ruleDelete });
  });

  test('three copies of one event make at most one write; the same file again makes zero requests', async () => {
    const nsgId = deleteRuleOfA();
    const event = fleetEvent(OP.ruleDelete, ruleIdOf(nsgId));
    const file = eventFile([event, event, event]);
    const first = await cli(['handle-event', file, '--json']);
    expect(first.code).toBe(0);
    expect(writeRequests(sandbox).length).toBeLessThanOrEqual(1);
    expect(netGuardRulesIn(sandbox, nsgId)).toHaveLength(1);

    sandbox.resetRequests();
    const again = await cli(['handle-event', file, '--json']);
    expect(again.code).toBe(0);
    expect(sandbox.countRequests()).toBe(0);
    expect(report(again).findings).toEqual([]);
  });

  test('from standard input (-), a CloudEvents subnet write detaching the NSG: drift reported on the subnet, nothing written', async () => {
    const a = pick(fleet, 'a');
    const subnetId = a.nodeSubnetIds[0];
    const vnet = sandbox.get<any>(subnetId.replace(/\/subnets\/[^/]+$/, ''));
    delete vnet.properties.subnets.find((s: any) => s.name === 'nodes').properties.networkSecurityGroup;
    sandbox.put(vnet);
    const r = await cli(['handle-event', '-', '--json'], { stdin: JSON.stringify(fleetEvent(OP.subnetWrite, subnetId, { schema: 'cloudevents' })) });
    expect(r.code).toBe(0);
    expect(onlyFinding(report(r), a.clusterId, 'node-ssh-deny')).toMatchObject({ targetId: subnetId, status: 'drift', action: 'reported' });
    expect(writeRequests(sandbox)).toHaveLength(0);
  });

  test('--mode report is a dry run: the drift is reported, nothing is written', async () => {
    const nsgId = deleteRuleOfA();
    const r = await cli(['handle-event', eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId))), '--mode', 'report', '--json']);
    expect(r.code).toBe(0);
    expect(onlyFinding(report(r), pick(fleet, 'a').clusterId, 'node-ssh-deny')).toMatchObject({ status: 'drift', action: 'reported' });
    expect(writeRequests(sandbox)).toHaveLength(0);
  });

  test('an unknown --mode is a usage error before any request', async () => {
    const r = await cli(['handle-event', samplePath('eventgrid-schema/subscription_ResourceWriteSuccess.json'), '--mode', 'yolo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--mode/);
    expect(sandbox.countRequests()).toBe(0);
  });

  test('a retryable failure exits 1 and says Event Grid would redeliver; running it again repairs', async () => {
    const nsgId = deleteRuleOfA();
    sandbox.failNext({ method: 'PUT', pathPattern: /securityRules\//i, status: 503, headers: { 'retry-after-ms': '1' }, times: 4 });
    const file = eventFile(fleetEvent(OP.ruleDelete, ruleIdOf(nsgId)));
    const first = await cli(['handle-event', file]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/retryable failure.*redeliver/i);
    const second = await cli(['handle-event', file]);
    expect(second.code).toBe(0);
    expect(rulePutsThatTook(sandbox, nsgId)).toHaveLength(1);
  });
});

describe('instance-metadata is judged by the sweep only', () => {
  test('a cluster event judges every control of the cluster but instance-metadata, and reads no Kubernetes object', async () => {
    // A cluster whose judgement would need its namespaces: Entra-integrated, a policy engine, link-local open.
    const kube = await KubeSandbox.start();
    try {
      const e = pick(fleet, 'e');
      const cluster = sandbox.get<ArmManagedCluster>(e.clusterId)!;
      cluster.properties.aadProfile = { managed: true, enableAzureRBAC: true };
      delete (cluster.properties.networkProfile as Record<string, unknown>).podLinkLocalAccess;
      sandbox.put(cluster);
      sandbox.setKubeApiServer(e.clusterId, kube.url);
      kube.addNamespace('default');

      const r = await cli(['handle-event', eventFile(fleetEvent(OP.clusterWrite, e.clusterId)), '--json']);
      expect(r.code).toBe(0);
      const controls = report(r).findings.filter((f) => f.resourceId === e.clusterId).map((f) => f.control);
      expect(controls.sort()).toEqual(CONTROL_IDS.filter((c) => c !== 'instance-metadata').sort());
      expect(kube.requests).toEqual([]);
      expect(sandbox.findRequests({ method: 'POST', path: /listClusterUserCredential$/ })).toEqual([]);

      // The sweep does judge it (and reads the namespaces to do so).
      const s = await cli(['sweep', '--json', '--mode', 'report', '--subscription', fleet.subscriptionId]);
      expect(onlyFinding(report(s), e.clusterId, 'instance-metadata')).toMatchObject({ status: 'drift', action: 'reported' });
      expect(kube.requests.length).toBeGreaterThan(0);
    } finally {
      await kube.stop();
    }
  });
});
