// The deployment package (`npm run package`, what azd deploys): loaded the way the Functions worker
// loads it (every file of package.json main, through the real @azure/functions), its registrations,
// what each first invocation loads, and that no dev dependency or test kit is inside.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allInputs, APP_MAIN, buildPackage, filesMatchingMain, loadAppOnce, staticInputs, teamsInputs, type PackageResult } from '../../scripts/package';

jest.setTimeout(240_000);

const root = path.join(__dirname, '..', '..');
// npm marks every package only the devDependencies need with "dev": true in package-lock.json.
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
const devOnly = Object.entries(lock.packages).filter(([p, info]) => p.startsWith('node_modules/') && info.dev).map(([p]) => `${p}/`);
let out: string;
let pkg: PackageResult;

beforeAll(async () => {
  // Inside the repository, as `npm run package` builds it (a temporary folder, so tests never race it).
  const cache = path.join(root, 'node_modules', '.cache', 'aks-netguard');
  fs.mkdirSync(cache, { recursive: true });
  out = fs.mkdtempSync(path.join(cache, 'package-'));
  pkg = await buildPackage({ outDir: out, zip: false });
});
afterAll(async () => {
  fs.rmSync(out, { recursive: true, force: true });
  // No esbuild service process left behind in the jest worker.
  await (await import('esbuild')).stop();
});

const FUNCTIONS = ['dailySweep', 'deliverNotices', 'onResourceEvent', 'sweepSubscription', 'teamsMessages', 'verifyClusterUpdates'];

test('the worker registers all six functions by loading only the registration files of main', () => {
  const main = filesMatchingMain(pkg.appDir, APP_MAIN).map((f) => path.relative(pkg.appDir, f));
  expect(main).toEqual(FUNCTIONS.map((n) => `dist/functions/${n}.js`));
  const load = loadAppOnce(pkg.appDir);
  expect([...load.registered].sort()).toEqual(FUNCTIONS);
  // Each registration file requires @azure/functions and nothing else at load time.
  for (const f of main) {
    const requires = [...fs.readFileSync(path.join(pkg.appDir, f), 'utf8').matchAll(/require\('([^']+)'\)/g)].map((m) => m[1]);
    expect(requires).toEqual(['@azure/functions']);
  }
});

test('the registrations carry the options functions/*.ts register (triggers, queues, route, schedule)', () => {
  const byName = Object.fromEntries(pkg.registrations.map((r) => [r.name, r]));
  expect(byName.onResourceEvent.kind).toBe('eventGrid');
  expect(byName.dailySweep).toMatchObject({ kind: 'timer', options: { schedule: '%AKS_NETGUARD_SWEEP_SCHEDULE%' } });
  expect(byName.teamsMessages).toMatchObject({ kind: 'http', options: { route: 'messages', methods: ['POST'], authLevel: 'anonymous' } });
  expect(byName.sweepSubscription).toMatchObject({ kind: 'storageQueue', options: { queueName: 'netguard-sweep', connection: 'AzureWebJobsStorage' } });
  expect(byName.deliverNotices).toMatchObject({ kind: 'storageQueue', options: { queueName: 'netguard-notices' } });
  expect(byName.verifyClusterUpdates).toMatchObject({ kind: 'storageQueue', options: { queueName: 'netguard-verify' } });
});

test('an invocation through the worker path runs the real code, with the same @azure/functions as the worker', () => {
  // The worker's functions-core stand-in keeps each registered handler; the script invokes two of them.
  const script = `
const Module = require('node:module');
const handlers = new Map();
const core = { setProgrammingModel() {}, registerFunction(m, h) { handlers.set(m.name, h); return { dispose() {} }; }, log() {} };
const load = Module._load;
Module._load = function (r, ...rest) { return r === '@azure/functions-core' ? core : load.call(this, r, ...rest); };
const files = ${JSON.stringify(filesMatchingMain(pkg.appDir, APP_MAIN))};
for (const f of files) require(f);
const { HttpRequest, HttpResponse, InvocationContext } = require('@azure/functions');
(async () => {
  const logs = [];
  const context = new InvocationContext({ functionName: 'onResourceEvent', logHandler: (level, ...a) => logs.push(a.join(' ')) });
  const validation = { id: 'v-1', topic: '/subscriptions/x', subject: '', eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', eventTime: '2026-11-20T10:00:00Z', dataVersion: '1', metadataVersion: '1', data: { validationCode: 'abc' } };
  await handlers.get('onResourceEvent')(validation, context);
  // An activity without a Bot Framework token: the bot (the Teams SDK chunk, imported now) refuses it.
  const activity = { type: 'message', text: 'status', serviceUrl: 'https://smba.trafficmanager.net/emea/', channelId: 'msteams', conversation: { id: '19:x@thread.tacv2' }, from: { id: '29:u' }, recipient: { id: '28:b' } };
  const request = new HttpRequest({ method: 'POST', url: 'http://localhost/api/messages', headers: { 'content-type': 'application/json' }, body: { string: JSON.stringify(activity) } });
  const response = await handlers.get('teamsMessages')(request, new InvocationContext({ functionName: 'teamsMessages' }));
  process.stdout.write(JSON.stringify({ logs, status: response.status, sameModel: response instanceof HttpResponse }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  const env = {
    PATH: process.env.PATH,
    AzureWebJobsStorage: 'UseDevelopmentStorage=true', // never reached: the request stops at authentication
    MicrosoftAppId: '0b5e1e0d-1111-4222-8333-944455556666',
    MicrosoftAppTenantId: '6a8f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
    MicrosoftAppType: 'UserAssignedMSI',
  };
  const r = spawnSync(process.execPath, ['-e', script], { cwd: pkg.appDir, encoding: 'utf8', env });
  // (The SDK logs the refused request on stderr; the script itself must succeed.)
  expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
  const result = JSON.parse(r.stdout);
  expect(result.logs.join('\n')).toMatch(/subscription validation v-1 acknowledged/);
  expect(result).toMatchObject({ status: 401, sameModel: true });
});

test.each(FUNCTIONS)('the first invocation of %s loads neither the Teams SDK nor the telemetry SDK', (name) => {
  const inputs = staticInputs(pkg.handlers, name, root);
  expect(inputs.some((p) => p === `functions/${name}.ts`)).toBe(true);
  expect(teamsInputs(inputs)).toEqual([]);
  expect(inputs.filter((p) => /node_modules\/@azure\/monitor-opentelemetry\//.test(p))).toEqual([]);
});

test('the Teams SDK is in the package, in a chunk of its own that the bot imports when first needed', () => {
  expect(teamsInputs(allInputs(pkg.handlers)).some((p) => /node_modules\/botbuilder/.test(p))).toBe(true);
});

test('no dev dependency and no test kit is in the package, and package.json has nothing to build', () => {
  const deployed = JSON.parse(fs.readFileSync(path.join(pkg.appDir, 'package.json'), 'utf8'));
  expect(deployed).not.toHaveProperty('devDependencies');
  expect(deployed).not.toHaveProperty('scripts');
  expect(deployed.main).toBe(APP_MAIN);
  expect(Object.keys(deployed.dependencies)).toEqual(['@azure/functions']);
  expect(devOnly).toEqual(expect.arrayContaining(['node_modules/jest/', 'node_modules/esbuild/', 'node_modules/azurite/']));
  const shipped = pkg.files.map((f) => f.split(path.sep).join('/')).filter((f) => f.startsWith('node_modules/'));
  expect(shipped.filter((f) => devOnly.some((d) => f.startsWith(d)))).toEqual([]);
  const inputs = allInputs(pkg.handlers);
  expect(inputs.filter((p) => devOnly.some((d) => p.startsWith(d)))).toEqual([]);
  // The test kit (the ARM and Kubernetes stand-ins, the fleet builders, the Azurite harness), the
  // tests, the bench and the scripts stay out of the deployed code.
  expect(inputs.filter((p) => /^(test|testkit|bench|scripts)\//.test(p))).toEqual([]);
  expect(pkg.files.filter((f) => /^(test|testkit|bench|scripts|shared|functions|infra|docs)[\\/]/.test(f) || (f.endsWith('.ts') && !f.startsWith('node_modules')))).toEqual([]);
});

/** Entry names of a zip, read from its central directory. */
function zipEntries(file: string): string[] {
  const buf = fs.readFileSync(file);
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip');
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory');
    const nameLength = buf.readUInt16LE(at + 28);
    const extra = buf.readUInt16LE(at + 30);
    const comment = buf.readUInt16LE(at + 32);
    names.push(buf.toString('utf8', at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
  }
  return names;
}

test('the zip holds exactly the deployed folder, laid out as the Functions host expects', async () => {
  const zipped = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-package-'));
  try {
    const result = await buildPackage({ outDir: zipped });
    const names = zipEntries(result.zip!);
    expect(names.sort()).toEqual(result.files.filter((f) => f !== '.funcignore').map((f) => f.split(path.sep).join('/')).sort());
    for (const n of ['host.json', 'package.json', 'dist/functions/onResourceEvent.js', 'dist/handlers/onResourceEvent.mjs', 'node_modules/@azure/functions/package.json', 'node_modules/@azure/monitor-opentelemetry/index.js']) {
      expect(names).toContain(n);
    }
  } finally {
    fs.rmSync(zipped, { recursive: true, force: true });
  }
});
