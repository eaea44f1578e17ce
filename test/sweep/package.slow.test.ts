// The deployment package, the slow half (`npm run test:slow`): each function bundle loads in a fresh
// Node process, and the zip is laid out as the Functions host expects (host.json, package.json main,
// bundles, shipped node_modules).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFunctionBundles, buildPackage, measureModuleLoad, type BundledEntry } from '../../scripts/package';

jest.setTimeout(240_000);

let dir: string;
let bundles: BundledEntry[];

beforeAll(async () => {
  // Inside the repository, so the bundles resolve @azure/functions (left out of them) from node_modules.
  const cache = path.join(__dirname, '..', '..', 'node_modules', '.cache', 'aks-netguard');
  fs.mkdirSync(cache, { recursive: true });
  dir = fs.mkdtempSync(path.join(cache, 'bundles-'));
  bundles = await buildFunctionBundles({ outDir: dir, only: ['onResourceEvent', 'dailySweep', 'sweepSubscription'] });
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  // No esbuild service process left behind in the jest worker.
  await (await import('esbuild')).stop();
});

const bundle = (name: string) => bundles.find((b) => b.name === name)!;

test.each(['onResourceEvent', 'dailySweep', 'sweepSubscription'])('the %s bundle loads in a fresh Node process', (name) => {
  expect(measureModuleLoad(bundle(name).file, 1)).toBeGreaterThan(0);
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

test('npm run package lays out a zip the Functions host can run', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-package-'));
  try {
    const result = await buildPackage(undefined, out);
    const names = zipEntries(result.zip);
    for (const n of ['host.json', 'package.json', 'dist/functions/onResourceEvent.js', 'dist/functions/dailySweep.js', 'dist/functions/sweepSubscription.js', 'node_modules/@azure/functions/package.json', 'node_modules/@azure/monitor-opentelemetry/index.js']) {
      expect(names).toContain(n);
    }
    expect(names.some((n) => n.startsWith('node_modules/botbuilder') || n.startsWith('node_modules/@microsoft/'))).toBe(false);
    const pkg = JSON.parse(fs.readFileSync(path.join(out, 'package.json'), 'utf8'));
    expect(pkg.main).toBe('dist/functions/*.js');
    expect(Object.keys(pkg.dependencies)).toEqual(['@azure/functions']);
    // The bundles resolve what they leave out from the package's own node_modules.
    const load = require('node:child_process').spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(out, 'dist/functions/dailySweep.js'))})`], { cwd: os.tmpdir(), encoding: 'utf8' });
    expect(load.status).toBe(0);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
