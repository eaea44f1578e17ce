// `npm run teams:package` against a fake azd environment: a fake `azd` first on PATH answers
// `azd env get-values` from a file and records `azd env set` into it, as azd keeps its .env.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { REPO } from './bicep';

jest.setTimeout(60_000);

const CLIENT_ID = '0b5e1e0d-1111-4222-8333-944455556666';
const HOST = 'func-netguard-abc123.azurewebsites.net';
let dir: string;
let script: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-teams-'));
  // Bundled as the npm script bundles it (its name must end in teams-package.js to run).
  script = path.join(dir, 'teams-package.js');
  await build({ entryPoints: [path.join(REPO, 'scripts', 'teams-package.ts')], outfile: script, bundle: true, platform: 'node', format: 'cjs', packages: 'external', logLevel: 'warning', nodePaths: [path.join(REPO, 'node_modules')] });
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, 'azd'),
    [
      '#!/bin/sh',
      'case "$1 $2" in',
      '  "env get-values") cat "$FAKE_ENV" ;;',
      '  "env set") printf \'%s="%s"\\n\' "$3" "$4" >> "$FAKE_ENV" ;;',
      '  *) echo "unexpected azd $*" >&2; exit 2 ;;',
      'esac',
    ].join('\n'),
    { mode: 0o755 },
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(envFile: string, out: string) {
  // The script writes under the repository's .package/ (found from its location), so it runs from a copy of
  // the repository layout: appPackage and host.json/functions markers, in a temporary root.
  return spawnSync(process.execPath, [script], {
    cwd: out,
    encoding: 'utf8',
    env: { PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, FAKE_ENV: envFile, NODE_PATH: path.join(REPO, 'node_modules') },
  });
}

/** A temporary repository root with what the script reads (appPackage/, host.json, functions/). */
function fakeRoot(): string {
  const root = fs.mkdtempSync(path.join(dir, 'root-'));
  fs.cpSync(path.join(REPO, 'appPackage'), path.join(root, 'appPackage'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'host.json'), path.join(root, 'host.json'));
  fs.mkdirSync(path.join(root, 'functions'));
  return root;
}

/** name → content of each entry of a zip (stored or deflated). */
function unzip(file: string): Record<string, Buffer> {
  const buf = fs.readFileSync(file);
  const out: Record<string, Buffer> = {};
  let at = 0;
  while (buf.readUInt32LE(at) === 0x04034b50) {
    const method = buf.readUInt16LE(at + 8);
    const flags = buf.readUInt16LE(at + 6);
    const size = buf.readUInt32LE(at + 18);
    const nameLength = buf.readUInt16LE(at + 26);
    const extra = buf.readUInt16LE(at + 28);
    const name = buf.toString('utf8', at + 30, at + 30 + nameLength);
    const start = at + 30 + nameLength + extra;
    if (flags & 0x08) {
      // Sizes follow the data (streamed): find the data descriptor.
      const sig = buf.indexOf(Buffer.from([0x50, 0x4b, 0x07, 0x08]), start);
      out[name] = method === 8 ? inflateRawSync(buf.subarray(start, sig)) : buf.subarray(start, sig);
      at = sig + 16;
    } else {
      out[name] = method === 8 ? inflateRawSync(buf.subarray(start, start + size)) : buf.subarray(start, start + size);
      at = start + size;
    }
  }
  return out;
}

test('fills the manifest from the azd environment, keeps the Teams app id in it, and zips the three files', () => {
  const root = fakeRoot();
  const envFile = path.join(dir, 'env-1');
  fs.writeFileSync(envFile, `AZURE_ENV_NAME="prod"\nNETGUARD_IDENTITY_CLIENT_ID="${CLIENT_ID}"\nNETGUARD_FUNCTION_APP_HOST="${HOST}"\n`);
  const first = run(envFile, root);
  expect(first.stderr).toBe('');
  expect(first.status).toBe(0);
  const zip = path.join(root, '.package', 'netguard-teams.zip');
  const entries = unzip(zip);
  expect(Object.keys(entries).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
  const manifest = JSON.parse(entries['manifest.json'].toString('utf8'));
  expect(manifest.bots[0].botId).toBe(CLIENT_ID);
  expect(manifest.validDomains).toEqual([HOST]);
  expect(manifest.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(JSON.stringify(manifest)).not.toContain('${{');
  expect(entries['color.png'].equals(fs.readFileSync(path.join(REPO, 'appPackage', 'color.png')))).toBe(true);
  // The id went into the azd environment, so the next package updates the same Teams app.
  expect(fs.readFileSync(envFile, 'utf8')).toContain(`NETGUARD_TEAMS_APP_ID="${manifest.id}"`);
  const second = run(envFile, root);
  expect(second.status).toBe(0);
  expect(JSON.parse(unzip(zip)['manifest.json'].toString('utf8')).id).toBe(manifest.id);
});

test('says to run azd up first when the environment has no deployment yet', () => {
  const envFile = path.join(dir, 'env-2');
  fs.writeFileSync(envFile, 'AZURE_ENV_NAME="prod"\n');
  const r = run(envFile, fakeRoot());
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/run `azd up` first/);
});
