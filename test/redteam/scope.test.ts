// Red team: "Stay in scope" on layouts the safety work did not try, through the CLI sweep.
//  - A hub-and-spoke cluster: the cluster is in scope, its node subnet and NSG are in a hub
//    subscription outside AKS_NETGUARD_SUBSCRIPTIONS. Nothing is read or written in the hub, and the
//    finding says plainly why NetGuard cannot judge it (once, without blaming a missing NSG).
//  - A nextLink on the ARM endpoint itself that names a subscription outside the scope is not followed.
import { runCli } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import { clusterFromFixture, nsgFromFixture, seedDriftedFleet, vnetWithSubnets } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { onlyFinding, startSandbox } from '../helpers/sandboxEnv';

const SPOKE = '5a1e5a1e-0000-4000-8000-0000000000a1';
const HUB = '5a1e5a1e-0000-4000-8000-0000000000b2';
let sandbox: ArmSandbox;

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await sandbox.stop();
});

async function sweep(scope: string, args: string[] = []): Promise<{ code: number; report: RunReport }> {
  let stdout = '';
  const code = await runCli(['sweep', '--json', '--mode', 'auto', ...args], {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: scope },
  });
  return { code, report: JSON.parse(stdout) as RunReport };
}

test('a spoke cluster whose node subnet is in a hub subscription outside the scope: no request to the hub, one clear sentence', async () => {
  const nsgId = `/subscriptions/${HUB}/resourceGroups/hub/providers/Microsoft.Network/networkSecurityGroups/hub-nsg`;
  sandbox.put(nsgFromFixture({ subscriptionId: HUB, resourceGroup: 'hub', name: 'hub-nsg', securityRules: [] }));
  const vnet = vnetWithSubnets({ subscriptionId: HUB, resourceGroup: 'hub', name: 'hub-vnet', addressPrefixes: ['10.80.0.0/16'], subnets: [{ name: 'nodes', addressPrefix: '10.80.0.0/22', nsgId }] });
  sandbox.put(vnet);
  sandbox.addSubscription(SPOKE, 'spoke');
  const cluster = clusterFromFixture({ subscriptionId: SPOKE, resourceGroup: 'rg', name: 'aks-spoke', nodeSubnetId: `${vnet.id}/subnets/nodes` });
  sandbox.put(cluster);

  const { report } = await sweep(SPOKE);

  expect(sandbox.findRequests((r) => r.path.toLowerCase().includes(HUB))).toEqual([]);
  const finding = onlyFinding(report, cluster.id, 'node-ssh-deny');
  expect(finding.action).not.toBe('remediated');
  // The judgement's sentence is not repeated, and no "cannot choose an NSG" for a subnet that has one.
  const sentence = 'was not found, so NetGuard cannot judge SSH to its nodes';
  expect(finding.detail.split(sentence).length - 1).toBe(1);
  expect(finding.detail).not.toMatch(/cannot choose an NSG/);
}, 30_000);

test('a nextLink on the ARM endpoint naming a subscription outside the scope is not followed', async () => {
  const fleet = seedDriftedFleet(sandbox);
  const outside = '5a1e5a1e-0000-4000-8000-0000000000c3';
  sandbox.failNext({
    method: 'GET',
    pathPattern: /\/managedClusters$/i,
    status: 200,
    body: { value: [], nextLink: `${sandbox.endpoint}/subscriptions/${outside}/providers/Microsoft.ContainerService/managedClusters?api-version=2026-01-01` },
  });
  const { report } = await sweep(fleet.subscriptionId, ['--subscription', fleet.subscriptionId]);
  expect(sandbox.findRequests((r) => r.path.toLowerCase().includes(outside))).toEqual([]);
  expect(report.summary.errors).toBeGreaterThan(0);
}, 30_000);
