// Red team: links that ARM answers with (a list page's `nextLink`, a cluster update's
// `Azure-AsyncOperation`) are followed only on the ARM endpoint NetGuard was configured with. A
// hostile or tampered answer that points elsewhere must not receive a request — in Azure the request
// would carry NetGuard's ARM bearer token (its identity's write access to production networks).
// Reached through the CLI sweep against the ARM sandbox; the "elsewhere" is a second loopback server.
// And "Always end": a nextLink that leads back to a page already read must not keep a sweep listing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import { seedDriftedFleet, type SeededFleet } from '../../testkit/fleet';
import type { RunReport } from '../../shared/types';
import { clusterIn, startSandbox } from '../helpers/sandboxEnv';

let sandbox: ArmSandbox;
let fleet: SeededFleet;
let elsewhere: http.Server;
let elsewhereUrl: string;
const received: Array<{ method?: string; url?: string; authorization?: string }> = [];

beforeEach(async () => {
  sandbox = await startSandbox();
  fleet = seedDriftedFleet(sandbox);
  received.length = 0;
  elsewhere = http.createServer((req, res) => {
    received.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ value: [], status: 'Succeeded' }));
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await sandbox.stop();
  elsewhere.closeAllConnections();
  await new Promise((resolve) => elsewhere.close(resolve));
});

async function sweep(mode: string): Promise<{ code: number; report: RunReport; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['sweep', '--json', '--mode', mode, '--subscription', fleet.subscriptionId], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint, AKS_NETGUARD_SUBSCRIPTIONS: fleet.subscriptionId },
    armTuning: { pollIntervalMs: 5, armRetry: { retryDelayInMs: 5, maxRetryDelayInMs: 20, maxRetryAfterInMs: 20 } },
  });
  return { code, report: JSON.parse(stdout) as RunReport, stderr };
}

test('a nextLink to another origin (naming an in-scope subscription) is not followed, and the sweep says it could not list', async () => {
  sandbox.failNext({
    method: 'GET',
    pathPattern: /\/managedClusters$/i,
    status: 200,
    body: { value: [], nextLink: `${elsewhereUrl}/subscriptions/${fleet.subscriptionId}/providers/Microsoft.ContainerService/managedClusters?api-version=2026-01-01&page=2` },
  });
  const { report } = await sweep('report');
  expect(received).toEqual([]);
  // Not "0 clusters, all fine": the listing that could not be finished shows as an error.
  expect(report.summary.errors).toBeGreaterThan(0);
}, 30_000);

test('an Azure-AsyncOperation URL on another origin is not polled; the applied update is still verified by reading the cluster', async () => {
  const routing = fleet.clusters.find((c) => c.label === 'e')!;
  sandbox.failNext({
    method: 'PUT',
    pathPattern: /\/managedClusters\/aks-http-routing$/i,
    status: 201,
    afterApplying: true,
    headers: { 'azure-asyncoperation': `${elsewhereUrl}/subscriptions/${fleet.subscriptionId}/providers/Microsoft.ContainerService/locations/westeurope/operations/op1?api-version=2026-01-01` },
    body: {},
  });
  const { report } = await sweep('auto');
  expect(received).toEqual([]);
  expect(clusterIn(sandbox, routing.clusterId).properties.addonProfiles?.httpApplicationRouting?.enabled).toBe(false);
  const finding = report.findings.find((f) => f.control === 'http-application-routing' && f.resourceId.toLowerCase() === routing.clusterId.toLowerCase())!;
  expect(finding.action).toBe('remediated');
}, 30_000);

test('a nextLink that leads back to a page already read ends the listing (an error finding), instead of looping forever', async () => {
  const loop = `${sandbox.endpoint}/subscriptions/${fleet.subscriptionId}/providers/Microsoft.Network/networkSecurityGroups?api-version=2025-05-01&page=loop`;
  // Every NSG list page answers with a link to the same page: the sweep would never report.
  sandbox.failNext({ method: 'GET', pathPattern: /\/networkSecurityGroups$/i, status: 200, body: { value: [], nextLink: loop }, times: Number.POSITIVE_INFINITY });
  const { report } = await sweep('report');
  expect(report.summary.errors).toBeGreaterThan(0);
  expect(sandbox.countRequests({ method: 'GET', path: /\/networkSecurityGroups$/i })).toBeLessThan(10);
}, 30_000);

test('a cluster update answered with a day-long Retry-After is still followed within the Retry-After cap (the CLI does not sleep for a day)', async () => {
  const routing = fleet.clusters.find((c) => c.label === 'e')!;
  sandbox.failNext({
    method: 'PUT',
    pathPattern: /\/managedClusters\/aks-http-routing$/i,
    status: 201,
    afterApplying: true,
    // A status URL on the ARM endpoint that does not answer: NetGuard then reads the cluster instead.
    headers: { 'azure-asyncoperation': `${sandbox.endpoint}/subscriptions/${fleet.subscriptionId}/providers/Microsoft.ContainerService/locations/westeurope/operations/op2?api-version=2026-01-01`, 'retry-after': '86400' },
    body: {},
  });
  const { report } = await sweep('auto');
  const finding = report.findings.find((f) => f.control === 'http-application-routing' && f.resourceId.toLowerCase() === routing.clusterId.toLowerCase())!;
  expect(finding.action).toBe('remediated');
}, 30_000);
