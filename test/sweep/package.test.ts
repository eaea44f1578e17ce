// The deployment package, the cheap half (in `npm test`): per-function bundles (esbuild metafiles say
// what is inside), the Event Grid and sweep functions free of the Teams SDK. Loading each bundle in a
// fresh Node process and the zip layout are package.slow.test.ts (`npm run test:slow`).
import fs from 'node:fs';
import path from 'node:path';
import { buildFunctionBundles, bundleInputs, teamsInputs, type BundledEntry } from '../../scripts/package';

jest.setTimeout(240_000);

let dir: string;
let bundles: BundledEntry[];

beforeAll(async () => {
  // Inside the repository, so the bundles resolve @azure/functions (left out of them) from node_modules.
  const cache = path.join(__dirname, '..', '..', 'node_modules', '.cache', 'aks-netguard');
  fs.mkdirSync(cache, { recursive: true });
  dir = fs.mkdtempSync(path.join(cache, 'bundles-'));
  bundles = await buildFunctionBundles({ outDir: dir, only: ['onResourceEvent', 'dailySweep', 'sweepSubscription', 'teamsMessages'] });
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  // No esbuild service process left behind in the jest worker.
  await (await import('esbuild')).stop();
});

const bundle = (name: string) => bundles.find((b) => b.name === name)!;

test.each(['onResourceEvent', 'dailySweep', 'sweepSubscription'])('the %s bundle contains no Teams SDK, no bot code and no telemetry SDK', (name) => {
  expect(teamsInputs(bundle(name))).toEqual([]);
  // Application Insights' distro is its own bundle in node_modules, loaded only when telemetry is on.
  expect(bundleInputs(bundle(name)).filter((p) => /node_modules\/@azure\/monitor-opentelemetry\//.test(p))).toEqual([]);
  expect(bundleInputs(bundle(name)).some((p) => p.startsWith('functions/') && p.endsWith(`${name}.ts`))).toBe(true);
});

test('the check sees the Teams SDK where it is (the bot endpoint bundles it for its first request)', () => {
  expect(teamsInputs(bundle('teamsMessages')).some((p) => /node_modules\/botbuilder/.test(p))).toBe(true);
});
