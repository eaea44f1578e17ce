// Keeps `npm run bench` from rotting, the cheap half (in `npm test`): bundles the benchmark as the npm
// script does and checks that it starts and refuses a bad option. The full run on a tiny fleet, which
// checks the `--json` shape, is benchShape.slow.test.ts (`npm run test:slow`).
import { useBenchBundle } from '../helpers/benchRig';

jest.setTimeout(240_000);

const bench = useBenchBundle();

test('without --json the benchmark rejects an unknown option before doing anything', async () => {
  const r = await bench.run(['--fast']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/Unknown option '--fast'/);
});
