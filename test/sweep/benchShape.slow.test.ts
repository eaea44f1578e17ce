// Keeps `npm run bench` from rotting: bundles the benchmark as the npm script does, runs it on a tiny
// fleet without latency, and checks that `--json` prints exactly one object of the documented shape.
// Slow (a whole benchmark run): `npm run test:slow`, not `npm test`.
import { useBenchBundle } from '../helpers/benchRig';

jest.setTimeout(240_000);

const bench = useBenchBundle();

const eventShape = { armCalls: expect.any(Number), storageCalls: expect.any(Number), storageRoundTrips: expect.any(Number), storageMs: expect.any(Number), p50Ms: expect.any(Number), p99Ms: expect.any(Number), p50WallMs: expect.any(Number), p99WallMs: expect.any(Number) };

test('npm run bench -- --json prints one JSON object of the documented shape', async () => {
  const r = await bench.run(['--json', '--latency', '0', '--resources', '21,42', '--subscriptions', '2', '--workers', '2', '--iterations', '2', '--naive-sample', '10', '--cold-start-runs', '1']);
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
      // Six list pages, and one kubeconfig for each of the clusters (a third of the resources).
      armCallsLowerBound: 6 + resources / 3,
      kubeCalls: expect.any(Number),
      kubeCallsLowerBound: (2 * resources) / 3,
      peakRssMb: expect.any(Number),
      liveHeapFirstMb: expect.any(Number),
      liveHeapEndMb: expect.any(Number),
      naiveSeconds: expect.any(Number),
      naiveArmCalls: resources,
    });
    // Nothing drifts, so the sweep makes exactly the list calls it needs.
    expect(s.armCalls).toBe(s.armCallsLowerBound);
    expect(s.kubeCalls).toBe(s.kubeCallsLowerBound);
  }
});
