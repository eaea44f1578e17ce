// Keeps `npm run bench` from rotting, the cheap half (in `npm test`): bundles the benchmark as the npm
// script does and checks that it starts and refuses a bad option. The full run on a tiny fleet, which
// checks the `--json` shape, is benchShape.slow.test.ts (`npm run test:slow`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, stop } from 'esbuild';

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
  // No service process left behind in the jest worker (esbuild keeps one for later builds).
  await stop();
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

test('without --json the benchmark rejects an unknown option before doing anything', async () => {
  const r = await run(file, ['--fast']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/Unknown option '--fast'/);
});
