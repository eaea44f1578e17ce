// `npm run package`: the deployment zip for `func azure functionapp publish --no-build` / azd.
// Each function entry (functions/*.ts) is bundled on its own with esbuild for Node 20 (CommonJS,
// minified, with a source map), so a function loads only the code it uses, and the Event Grid and
// timer functions never contain the Teams SDK. Layout of .package/ (and of the zip):
//   host.json, package.json (main: dist/functions/*.js), dist/functions/<name>.js(.map),
//   node_modules/ with only what is not bundled (@azure/functions and its dependencies).
// @azure/functions stays outside the bundles: the worker keeps one programming model per process, and
// a copy inside every bundle would register functions from several copies (its classes, such as
// HttpResponse, would then differ between the function that builds one and the model that reads it).
// @azure/functions-core is the worker's built-in module and is never on disk.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, type Metafile } from 'esbuild';

/** The repository: found upwards from this file (TypeScript source, or a bundled copy of this script). */
function findRepoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, 'host.json')) && fs.existsSync(path.join(dir, 'functions'))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error(`package: cannot find the repository (host.json and functions/) above ${__dirname} or ${process.cwd()}.`);
}

export const REPO_ROOT = findRepoRoot();
export const PACKAGE_DIR = path.join(REPO_ROOT, '.package');
export const ZIP_NAME = 'aks-netguard.zip';
/**
 * Application Insights' OpenTelemetry distro: 3 MB that only loads when telemetry is on. It is its
 * own bundle in the zip's node_modules, so no function pays for it at cold start.
 */
export const TELEMETRY_SDK = '@azure/monitor-opentelemetry';
/** Not bundled: provided by the host (functions-core) or shipped in node_modules (see above). */
export const EXTERNAL_PACKAGES = ['@azure/functions-core', '@azure/functions', TELEMETRY_SDK];
/** Shipped in the zip's node_modules, with their own dependencies. */
export const SHIPPED_PACKAGES = ['@azure/functions'];

export interface BundledEntry {
  name: string;
  /** Absolute path of the bundle. */
  file: string;
  bytes: number;
  metafile: Metafile;
}

export interface BuildOptions {
  /** Where the bundles go (default .package/dist/functions). */
  outDir?: string;
  /** Entry names to build (default: every functions/*.ts). */
  only?: string[];
  root?: string;
}

/** The function entries: functions/<name>.ts. */
export function functionEntries(root = REPO_ROOT): string[] {
  return fs
    .readdirSync(path.join(root, 'functions'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Bundles every function entry on its own; returns each bundle with its esbuild metafile. */
export async function buildFunctionBundles(options: BuildOptions = {}): Promise<BundledEntry[]> {
  const root = options.root ?? REPO_ROOT;
  const outDir = options.outDir ?? path.join(PACKAGE_DIR, 'dist', 'functions');
  fs.mkdirSync(outDir, { recursive: true });
  const names = options.only ?? functionEntries(root);
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(outDir, `${name}.js`);
      const result = await build({
        entryPoints: [path.join(root, 'functions', `${name}.ts`)],
        outfile: file,
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        minify: true,
        keepNames: true, // error and class names stay readable in logs
        sourcemap: 'linked',
        sourcesContent: false, // maps point at the sources by path; the zip stays small
        metafile: true,
        external: EXTERNAL_PACKAGES,
        logLevel: 'warning',
        legalComments: 'none',
      });
      return { name, file, bytes: fs.statSync(file).size, metafile: result.metafile };
    }),
  );
}

/** The input files of a bundle (repository-relative, forward slashes). */
export function bundleInputs(entry: BundledEntry): string[] {
  return Object.keys(entry.metafile.inputs);
}

const TEAMS_SDK = /(^|\/)node_modules\/(botbuilder[^/]*|botframework-[^/]*|@microsoft\/teams-ai|@microsoft\/teams\.[^/]*|adaptivecards[^/]*)\//;
const TEAMS_CODE = /(^|\/)shared\/teams\/(bot|host|delivery)\.ts$/; // the modules that load the SDK

/** Inputs of a bundle that belong to the Teams SDK or NetGuard's bot (empty for a clean bundle). */
export function teamsInputs(entry: BundledEntry): string[] {
  return bundleInputs(entry).filter((p) => TEAMS_SDK.test(p) || TEAMS_CODE.test(p));
}

/** Finds an installed package's folder the way Node does: node_modules of `from` and its parents. */
function findPackageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', ...name.split('/'));
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The packages to ship (top-level folders of root/node_modules), with their dependency closure. */
export function shippedPackageDirs(root = REPO_ROOT, names = SHIPPED_PACKAGES): Map<string, string> {
  const top = path.join(root, 'node_modules');
  const out = new Map<string, string>();
  const visit = (name: string, from: string) => {
    const dir = findPackageDir(name, from);
    if (!dir) throw new Error(`package: ${name} is not installed (needed from ${from}); run npm ci.`);
    // A package nested in another's node_modules travels with that package's folder.
    if (path.dirname(dir) === top || path.dirname(path.dirname(dir)) === top) {
      if (out.has(name)) return;
      out.set(name, dir);
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir);
  };
  for (const name of names) visit(name, root);
  return out;
}

/** The zip writer (yazl), loaded only when a zip is written. */
interface ZipWriter {
  outputStream: NodeJS.ReadableStream;
  addBuffer(buffer: Buffer, metadataPath: string, options?: { mtime?: Date; mode?: number; compress?: boolean }): void;
  end(): void;
}

function newZip(): ZipWriter {
  let yazl: { ZipFile: new () => ZipWriter };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    yazl = require('yazl') as { ZipFile: new () => ZipWriter };
  } catch {
    throw new Error('package: the zip writer "yazl" is not installed; run npm ci (it is a devDependency).');
  }
  return new yazl.ZipFile();
}

function filesUnder(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full, base));
    else if (entry.isFile()) out.push(path.relative(base, full));
  }
  return out.sort();
}

/** Writes a zip of `files` (paths relative to `dir`), with a fixed time so the same input gives the same zip. */
export async function writeZip(dir: string, files: string[], zipPath: string): Promise<void> {
  const zip = newZip();
  const mtime = new Date('2020-01-01T00:00:00Z');
  for (const rel of files) zip.addBuffer(fs.readFileSync(path.join(dir, rel)), rel.split(path.sep).join('/'), { mtime, mode: 0o100644 });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(zipPath);
    out.on('close', () => resolve());
    out.on('error', reject);
    zip.outputStream.on('error', reject);
    zip.outputStream.pipe(out);
  });
}

export interface PackageResult {
  dir: string;
  zip: string;
  entries: BundledEntry[];
  files: string[];
}

/** Builds .package/ (bundles, package.json, host.json, shipped node_modules) and zips it. */
export async function buildPackage(root = REPO_ROOT, outDir = PACKAGE_DIR): Promise<PackageResult> {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const entries = await buildFunctionBundles({ root, outDir: path.join(outDir, 'dist', 'functions') });

  const repoPkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; description?: string; engines?: object; dependencies?: Record<string, string> };
  const dependencies = Object.fromEntries(SHIPPED_PACKAGES.map((n) => [n, repoPkg.dependencies?.[n] ?? '*']));
  const pkg = { name: repoPkg.name, version: repoPkg.version, description: repoPkg.description, private: true, main: 'dist/functions/*.js', engines: repoPkg.engines, dependencies };
  fs.writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  fs.copyFileSync(path.join(root, 'host.json'), path.join(outDir, 'host.json'));
  for (const [name, dir] of shippedPackageDirs(root)) {
    fs.cpSync(dir, path.join(outDir, 'node_modules', ...name.split('/')), { recursive: true, dereference: true });
  }
  const telemetryDir = path.join(outDir, 'node_modules', ...TELEMETRY_SDK.split('/'));
  await build({
    stdin: { contents: `module.exports = require(${JSON.stringify(TELEMETRY_SDK)});`, resolveDir: root, loader: 'js' },
    outfile: path.join(telemetryDir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    external: ['@azure/functions-core'],
    logLevel: 'error',
    legalComments: 'none',
  });
  fs.writeFileSync(path.join(telemetryDir, 'package.json'), `${JSON.stringify({ name: TELEMETRY_SDK, private: true, main: 'index.js' }, null, 2)}\n`);

  const files = filesUnder(outDir);
  const zip = path.join(outDir, ZIP_NAME);
  await writeZip(outDir, files, zip);
  // The metafiles, beside the zip (not in it), for anyone asking "why is this in the bundle?".
  fs.mkdirSync(path.join(outDir, 'meta'), { recursive: true });
  for (const e of entries) fs.writeFileSync(path.join(outDir, 'meta', `${e.name}.json`), JSON.stringify(e.metafile));
  return { dir: outDir, zip, entries, files };
}

/**
 * Module load time of a bundle in a fresh Node process (what a cold start pays before the first
 * invocation), in milliseconds; the median of `runs`.
 */
export function measureModuleLoad(bundle: string, runs = 5): number {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(bundle)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: path.dirname(bundle), env: { ...process.env, NODE_OPTIONS: '' } });
    if (r.status !== 0) throw new Error(`Loading ${bundle} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    times.push(Number(r.stdout.trim().split('\n').pop()));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const started = Date.now();
  const result = await buildPackage();
  const rel = (p: string) => path.relative(REPO_ROOT, p);
  console.log(`Packaged ${result.entries.length} function(s) into ${rel(result.zip)} (${(fs.statSync(result.zip).size / 1024).toFixed(0)} KiB, ${result.files.length} files) in ${((Date.now() - started) / 1000).toFixed(1)} s:`);
  for (const e of result.entries) {
    const teams = teamsInputs(e);
    console.log(`  ${e.name.padEnd(20)} ${(e.bytes / 1024).toFixed(0).padStart(6)} KiB  module load ${measureModuleLoad(e.file).toFixed(0).padStart(5)} ms${teams.length ? '  (includes the Teams SDK, loaded on first request)' : ''}`);
  }
  console.log(`Deploy: func azure functionapp publish <app> --no-build from ${rel(result.dir)}, or azd deploy (package: ${rel(result.zip)}).`);
}

// Only when run as the package script itself (a bundle that includes this module, like the bench, has its own main).
if (require.main === module && /package\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
