// Keeps `npm run bench` from rotting: bundles the benchmark as the npm script does, runs it on a tiny
// fleet without latency, and checks that `--json` prints exactly one object of the documented shape.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

jest.setTimeout(240_000);

const root = path.join(__dirname, '..', '..');
let dir: string;

let file: string;

beforeAll(async () => {
  const cache = path.join(root, 'node_modules', '.cache', 'aks-netguard');
  fs.mkdirSync(cache, { recursive: true });
  dir = fs.mkdtempSync(path.join(cache, 'bench-test-'));
  // Bundled the way the npm script does it (the file name must end in bench.js to run as the bench).
  file = path.join(dir, 'bench.js');
  await build({ entryPoints: [path.join(root, 'bench', 'run.ts')], outfile: file, bundle: true, platform: 'node', format: 'cjs', packages: 'external', logLevel: 'warning' });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const eventShape = { armCalls: expect.any(Number), storageCalls: expect.any(Number), storageRoundTrips: expect.any(Number), storageMs: expect.any(Number), p50Ms: expect.any(Number), p99Ms: expect.any(Number), p50WallMs: expect.any(Number), p99WallMs: expect.any(Number) };

test('npm run bench -- --json prints one JSON object of the documented shape', async () => {
  const r = await run(file, ['--json', '--latency', '0', '--resources', '21,42', '--subscriptions', '2', '--workers', '2', '--iterations', '2', '--naive-sample', '10', '--cold-start-runs', '1']);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.code).toBe(0);
  const result = JSON.parse(r.stdout); // throws if anything but one JSON value is on stdout
  expect(result).toEqual({
    event: { unrelated: eventShape, compliant: eventShape, drifted: eventShape },
    sweep: [expect.any(Object), expect.any(Object)],
    // app: the instance start (every registration file of main); then each function's first invocation; the Teams SDK.
    coldStartMs: Object.fromEntries(['app', 'dailySweep', 'deliverNotices', 'onResourceEvent', 'sweepSubscription', 'teamsMessages', 'verifyClusterUpdates', 'teamsSdk'].map((k) => [k, expect.any(Number)])),
  });
  // An unrelated event costs no ARM call; a drifted one costs more than a compliant one (it writes).
  expect(result.event.unrelated.armCalls).toBe(0);
  expect(result.event.drifted.armCalls).toBeGreaterThan(result.event.compliant.armCalls);
  // An unrelated event costs no storage call either; a drifted one makes more storage calls than a compliant one (it records its write).
  expect(result.event.unrelated.storageCalls).toBe(0);
  expect(result.event.drifted.storageCalls).toBeGreaterThan(result.event.compliant.storageCalls);
  for (const [i, resources] of [21, 42].entries()) {
    const s = result.sweep[i];
    expect(s).toEqual({
      resources,
      subscriptions: 2,
      workers: 2,
      seconds: expect.any(Number),
      armCalls: expect.any(Number),
      armCallsLowerBound: 6,
      peakRssMb: expect.any(Number),
      liveHeapFirstMb: expect.any(Number),
      liveHeapEndMb: expect.any(Number),
      naiveSeconds: expect.any(Number),
      naiveArmCalls: resources,
    });
    // Nothing drifts, so the sweep makes exactly the list calls it needs.
    expect(s.armCalls).toBe(s.armCallsLowerBound);
  }
});

test('without --json the benchmark rejects an unknown option before doing anything', async () => {
  const r = await run(file, ['--fast']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/Unknown option '--fast'/);
});
