// The benchmark as `npm run bench` runs it: bundled by esbuild into a temporary folder once per test
// file, then started as its own Node process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, stop } from 'esbuild';

const root = path.join(__dirname, '..', '..');

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Registers the build (beforeAll) and the clean-up (afterAll); `run` starts the bundled benchmark. */
export function useBenchBundle(): { run(args: string[]): Promise<BenchRun> } {
  let dir: string | undefined;
  let file: string | undefined;
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
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    run: (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [file!, ...args], { cwd: root });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
  };
}
