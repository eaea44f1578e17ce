// `npm run package`: the Function App exactly as it is deployed. azd runs this same script (azure.yaml
// points the service's `dist` at PACKAGE_APP_DIR), and the bench measures its output.
//
// Why this shape: the Functions Node v4 worker loads EVERY file that package.json `main` matches when an
// instance starts (that is how it finds the `app.*` registrations), whichever function was triggered.
// So what `main` matches must be cheap to load together, and each function's code must load only when
// that function first runs. Layout of .package/app/ (and of .package/aks-netguard.zip):
//   host.json, package.json (main: dist/functions/*.js, dependencies: @azure/functions only)
//   dist/functions/<name>.js   one generated registration per function: `app.<trigger>(name, options)`
//                              with the options functions/<name>.ts registers, and a handler that
//                              imports the function's code on its first invocation. Loads only
//                              @azure/functions.
//   dist/handlers/<name>.mjs   the function's code: esbuild ES module bundles with code splitting, so
//                              code shared by several functions is one chunk (dist/handlers/chunks/),
//                              loaded once per instance; the Teams SDK is its own chunk, imported by
//                              the Teams code when a Teams request or notice first needs it.
//   node_modules/              @azure/functions and its dependencies (shared with the worker, see
//                              below), and Application Insights' distro as one bundle, loaded only
//                              when telemetry starts (APPLICATIONINSIGHTS_CONNECTION_STRING set).
//   .funcignore                azd reads the ignore file of the folder it deploys; this one keeps
//                              node_modules (nothing is built remotely).
// @azure/functions stays outside the bundles: the worker keeps one programming model per process, and
// a copy inside a bundle would be a second model (its classes, such as HttpResponse, would differ
// between the function that builds one and the model that reads it). @azure/functions-core is the
// worker's built-in module and is never on disk.
// No devDependency and no test kit ends up in the package: test/infra and test/sweep/package.test.ts
// check the bundle inputs and the files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';

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
/** Everything `npm run package` writes. */
export const PACKAGE_DIR = path.join(REPO_ROOT, '.package');
/** The folder that is deployed: azure.yaml's service `dist` (relative to the repository). */
export const PACKAGE_APP = '.package/app';
export const ZIP_NAME = 'aks-netguard.zip';
/** package.json `main` of the deployed app: the registration files, and nothing else. */
export const APP_MAIN = 'dist/functions/*.js';
/**
 * Application Insights' OpenTelemetry distro: 3 MB that only loads when telemetry starts. It is its
 * own bundle in the package's node_modules, so no cold start pays for it.
 */
export const TELEMETRY_SDK = '@azure/monitor-opentelemetry';
/** Not bundled: provided by the host (functions-core) or shipped in node_modules (see above). */
export const EXTERNAL_PACKAGES = ['@azure/functions-core', '@azure/functions', TELEMETRY_SDK];
/** Shipped in the package's node_modules with their own dependencies (the package.json dependencies). */
export const SHIPPED_PACKAGES = ['@azure/functions'];
/** The .funcignore of the deployed folder: nothing the app needs is excluded (node_modules ships). */
export const APP_FUNCIGNORE = '# Written by npm run package. This folder is already exactly the app: node_modules ships (nothing is\n# built remotely). Its presence also stops azd from leaving node_modules out, as it does without one.\n*.zip\n';

/** The function entries: functions/<name>.ts. */
export function functionEntries(root = REPO_ROOT): string[] {
  return fs
    .readdirSync(path.join(root, 'functions'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

// ------------------------------------------------------------------ the handler bundles

const SHIM = 'netguard-functions-shim';
const ENTRY = 'netguard-entry:';

/**
 * Inside the handler bundles `@azure/functions` is this module: the real package for everything
 * (HttpResponse, …) except `app`, whose registration calls are recorded instead of sent to the worker.
 * The registration files made the real calls at startup; on a first invocation they read the handler
 * from here. It also lets the packager read each function's options by loading its bundle.
 */
const SHIM_SOURCE = `
const real = require('@azure/functions');
const registrations = new Map();
const app = new Proxy({}, {
  get(_target, kind) {
    return (name, options) => {
      if (typeof name !== 'string') throw new Error('aks-netguard package: app.' + String(kind) + ' needs a function name');
      registrations.set(name, { kind: String(kind), name, options: typeof options === 'function' ? { handler: options } : options });
    };
  },
});
module.exports = { ...real, app, registrations };
`;

function handlerPlugin(root: string): Plugin {
  return {
    name: 'netguard-handlers',
    setup(b) {
      b.onResolve({ filter: /^@azure\/functions$/ }, (args) => (args.namespace === SHIM ? undefined : { path: SHIM, namespace: SHIM }));
      b.onResolve({ filter: new RegExp(`^${ENTRY}`) }, (args) => ({ path: args.path.slice(ENTRY.length), namespace: 'netguard-entry' }));
      b.onLoad({ filter: /.*/, namespace: SHIM }, () => ({ contents: SHIM_SOURCE, loader: 'js', resolveDir: root }));
      // Each entry: the function module (which registers itself through the shim) and the registrations.
      b.onLoad({ filter: /.*/, namespace: 'netguard-entry' }, (args) => ({
        contents: `import './functions/${args.path}';\nimport * as functions from '@azure/functions';\nexport const registrations = functions.registrations;\n`,
        loader: 'js',
        resolveDir: root,
      }));
    },
  };
}

// An ES module has no require/__filename/__dirname; the CommonJS packages inside the bundles use them.
const ESM_BANNER = [
  "import { createRequire as __netguardCreateRequire } from 'node:module';",
  "import { fileURLToPath as __netguardFileURLToPath } from 'node:url';",
  "import { dirname as __netguardDirname } from 'node:path';",
  'const require = __netguardCreateRequire(import.meta.url);',
  'const __filename = __netguardFileURLToPath(import.meta.url);',
  'const __dirname = __netguardDirname(__filename);',
].join('\n');

export interface HandlerBuild {
  /** Folder of the handler modules (…/dist/handlers). */
  dir: string;
  names: string[];
  metafile: Metafile;
}

/** Bundles every function's code into ES modules with shared chunks (see the top of this file). */
export async function buildHandlers(appDir: string, root = REPO_ROOT, names = functionEntries(root)): Promise<HandlerBuild> {
  const dir = path.join(appDir, 'dist', 'handlers');
  const result = await build({
    entryPoints: Object.fromEntries(names.map((n) => [n, `${ENTRY}${n}.ts`])),
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    keepNames: true, // error and class names stay readable in logs
    sourcemap: 'linked',
    sourcesContent: false, // maps point at the sources by path; the zip stays small
    metafile: true,
    external: EXTERNAL_PACKAGES,
    banner: { js: ESM_BANNER },
    plugins: [handlerPlugin(root)],
    absWorkingDir: root,
    logLevel: 'warning',
    legalComments: 'none',
  });
  return { dir, names, metafile: result.metafile };
}

/** The output file (repository-relative, as in the metafile) of a function's handler module. */
function handlerOutput(hb: HandlerBuild, name: string, root: string): string {
  return path.relative(root, path.join(hb.dir, `${name}.mjs`)).split(path.sep).join('/');
}

/**
 * The inputs a function's first invocation loads: its handler module and every chunk it imports
 * statically (dynamic imports, such as the Teams SDK, load later and only if reached).
 */
export function staticInputs(hb: HandlerBuild, name: string, root = REPO_ROOT): string[] {
  const seen = new Set<string>();
  const visit = (out: string) => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const imp of hb.metafile.outputs[out]?.imports ?? []) if (imp.kind === 'import-statement' && !imp.external) visit(imp.path);
  };
  visit(handlerOutput(hb, name, root));
  return [...new Set([...seen].flatMap((out) => Object.keys(hb.metafile.outputs[out]?.inputs ?? {})))].sort();
}

/** Every input of every output (what the package contains, loaded or not). */
export function allInputs(hb: HandlerBuild): string[] {
  return [...new Set(Object.values(hb.metafile.outputs).flatMap((o) => Object.keys(o.inputs)))].sort();
}

/** The output chunk (absolute path) that holds `input` as a dynamically imported entry, if any. */
export function chunkOf(hb: HandlerBuild, input: string, root = REPO_ROOT): string | undefined {
  const out = Object.entries(hb.metafile.outputs).find(([, o]) => o.entryPoint === input);
  return out ? path.join(root, out[0]) : undefined;
}

const TEAMS_SDK = /(^|\/)node_modules\/(botbuilder[^/]*|botframework-[^/]*|@microsoft\/teams-ai|@microsoft\/teams\.[^/]*|adaptivecards[^/]*)\//;
const TEAMS_CODE = /(^|\/)shared\/teams\/(bot|host|delivery)\.ts$/; // the modules that load the SDK

/** Inputs that belong to the Teams SDK or NetGuard's bot (empty for a clean list). */
export function teamsInputs(inputs: string[]): string[] {
  return inputs.filter((p) => TEAMS_SDK.test(p) || TEAMS_CODE.test(p));
}

// ------------------------------------------------------------------ registrations

export interface Registration {
  /** The `app.<kind>` call: http, timer, storageQueue, eventGrid… */
  kind: string;
  name: string;
  /** Its options, without the handler. */
  options: Record<string, unknown>;
}

/**
 * Loads each handler module in a fresh Node process (through the shim, nothing reaches a worker) and
 * returns what each function registers. A function module must register exactly itself.
 */
export function readRegistrations(hb: HandlerBuild): Registration[] {
  const script = `
const { pathToFileURL } = require('node:url');
const path = require('node:path');
(async () => {
  const out = [];
  for (const name of ${JSON.stringify(hb.names)}) {
    const m = await import(pathToFileURL(path.join(${JSON.stringify(hb.dir)}, name + '.mjs')).href);
    const r = m.registrations.get(name);
    if (!r) throw new Error('functions/' + name + '.ts registers no function named ' + name);
    const { handler, ...options } = r.options;
    if (typeof handler !== 'function') throw new Error(name + ' registers no handler');
    const json = JSON.stringify(options);
    if (JSON.stringify(JSON.parse(json)) !== json) throw new Error(name + ': options are not plain data');
    out.push({ kind: r.kind, name, options });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: hb.dir, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`package: reading the registrations failed: ${r.stderr.trim().split('\n').slice(-5).join(' ')}`);
  return JSON.parse(r.stdout) as Registration[];
}

/** The registration file the worker loads for one function (CommonJS, loads only @azure/functions). */
export function registrationSource(reg: Registration): string {
  const lines = [
    `'use strict';`,
    `// Generated by npm run package from functions/${reg.name}.ts: the worker loads every file of package.json`,
    `// main at startup, so this only registers the function; its code is imported on the first invocation.`,
    `const { app } = require('@azure/functions');`,
    `let loading;`,
    `function load() {`,
    `  loading ??= import('../handlers/${reg.name}.mjs').then((m) => m.registrations.get(${JSON.stringify(reg.name)}).options.handler, (err) => {`,
    `    loading = undefined; // the next invocation tries again`,
    `    throw err;`,
    `  });`,
    `  return loading;`,
    `}`,
    `app.${reg.kind}(${JSON.stringify(reg.name)}, { ...${JSON.stringify(reg.options)}, handler: async (...args) => (await load())(...args) });`,
    '',
  ];
  return lines.join('\n');
}

// ------------------------------------------------------------------ node_modules and the zip

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

/** Files under `dir`, relative to it, sorted. */
export function filesUnder(dir: string, base = dir): string[] {
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

// ------------------------------------------------------------------ the package

export interface PackageOptions {
  root?: string;
  /** Where everything goes (default .package/); the app is `<outDir>/app`. */
  outDir?: string;
  /** Write the zip too (default true; the bench and fast tests skip it). */
  zip?: boolean;
}

export interface PackageResult {
  /** The deployed folder. */
  appDir: string;
  /** The zip of the same files (when written). */
  zip?: string;
  handlers: HandlerBuild;
  registrations: Registration[];
  /** Files of the deployed folder, relative to it. */
  files: string[];
}

/** Builds <outDir>/app (registrations, handlers, package.json, host.json, node_modules) and its zip. */
export async function buildPackage(options: PackageOptions = {}): Promise<PackageResult> {
  const root = options.root ?? REPO_ROOT;
  const outDir = options.outDir ?? PACKAGE_DIR;
  const appDir = path.join(outDir, 'app');
  // Only what this script writes: .package/ also holds the Teams app package (npm run teams:package).
  for (const stale of [appDir, path.join(outDir, 'meta'), path.join(outDir, ZIP_NAME)]) fs.rmSync(stale, { recursive: true, force: true });
  fs.mkdirSync(appDir, { recursive: true });

  // node_modules first: reading the registrations loads the handlers, which resolve @azure/functions there.
  for (const [name, dir] of shippedPackageDirs(root)) {
    fs.cpSync(dir, path.join(appDir, 'node_modules', ...name.split('/')), { recursive: true, dereference: true });
  }
  const telemetryDir = path.join(appDir, 'node_modules', ...TELEMETRY_SDK.split('/'));
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

  const handlers = await buildHandlers(appDir, root);
  const registrations = readRegistrations(handlers);
  const functionsDir = path.join(appDir, 'dist', 'functions');
  fs.mkdirSync(functionsDir, { recursive: true });
  for (const reg of registrations) fs.writeFileSync(path.join(functionsDir, `${reg.name}.js`), registrationSource(reg));

  const repoPkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; description?: string; engines?: object; dependencies?: Record<string, string> };
  const dependencies = Object.fromEntries(SHIPPED_PACKAGES.map((n) => [n, repoPkg.dependencies?.[n] ?? '*']));
  // No scripts and no devDependencies: nothing for a remote build or an `npm install` to do.
  const pkg = { name: repoPkg.name, version: repoPkg.version, description: repoPkg.description, private: true, main: APP_MAIN, engines: repoPkg.engines, dependencies };
  fs.writeFileSync(path.join(appDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  fs.copyFileSync(path.join(root, 'host.json'), path.join(appDir, 'host.json'));
  fs.writeFileSync(path.join(appDir, '.funcignore'), APP_FUNCIGNORE);

  const files = filesUnder(appDir);
  let zip: string | undefined;
  if (options.zip !== false) {
    zip = path.join(outDir, ZIP_NAME);
    await writeZip(appDir, files.filter((f) => f !== '.funcignore'), zip);
  }
  // The metafile, beside the app (not in it), for anyone asking "why is this in the package?".
  fs.mkdirSync(path.join(outDir, 'meta'), { recursive: true });
  fs.writeFileSync(path.join(outDir, 'meta', 'handlers.json'), JSON.stringify(handlers.metafile));
  return { appDir, zip, handlers, registrations, files };
}

// ------------------------------------------------------------------ cold start, as the worker loads the app

/** The files a `main` glob matches (the worker globs it; NetGuard's is a folder and `*.js`). */
export function filesMatchingMain(appDir: string, main: string): string[] {
  const dir = path.posix.dirname(main);
  const base = path.posix.basename(main);
  if (/[*?[{]/.test(dir)) throw new Error(`package: main "${main}": only a wildcard in the file name is supported here.`);
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  const full = path.join(appDir, ...dir.split('/'));
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => path.join(full, f));
}

export interface AppLoad {
  /** Time to load every file `main` matches, as the worker does at startup (ms). */
  appMs: number;
  /** The functions registered with the worker (its functions-core stand-in recorded them). */
  registered: string[];
  /** After that, the first invocation's import of `firstInvocation`'s code (ms), when asked. */
  firstInvocationMs?: number;
  /** After that, the import of `thenImport` (a chunk the code imports later, such as the Teams SDK). */
  thenImportMs?: number;
}

/**
 * One fresh Node process doing what the worker does at startup: `@azure/functions-core` is the
 * worker's module (here a stand-in that records registerFunction), then every file `main` matches is
 * required in turn. Optionally also imports one function's handler the way its first invocation does.
 */
export function loadAppOnce(appDir: string, firstInvocation?: string, thenImport?: string): AppLoad {
  const pkg = JSON.parse(fs.readFileSync(path.join(appDir, 'package.json'), 'utf8')) as { main: string };
  const files = filesMatchingMain(appDir, pkg.main);
  const script = `
const Module = require('node:module');
const registered = [];
const handlers = new Map();
const core = {
  setProgrammingModel() {},
  registerFunction(metadata, handler) { registered.push(metadata.name); handlers.set(metadata.name, handler); return { dispose() {} }; },
  log() {},
};
const load = Module._load;
Module._load = function (request, ...rest) { return request === '@azure/functions-core' ? core : load.call(this, request, ...rest); };
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;
(async () => {
  const t0 = process.hrtime.bigint();
  for (const f of ${JSON.stringify(files)}) require(f);
  const appMs = ms(t0);
  let firstInvocationMs;
  const first = ${JSON.stringify(firstInvocation ?? null)};
  if (first) {
    const t1 = process.hrtime.bigint();
    const m = await import(require('node:url').pathToFileURL(require('node:path').join(${JSON.stringify(appDir)}, 'dist', 'handlers', first + '.mjs')).href);
    if (typeof m.registrations.get(first)?.options.handler !== 'function') throw new Error('no handler for ' + first);
    firstInvocationMs = ms(t1);
  }
  let thenImportMs;
  const then = ${JSON.stringify(thenImport ?? null)};
  if (then) {
    const t2 = process.hrtime.bigint();
    await import(require('node:url').pathToFileURL(then).href);
    thenImportMs = ms(t2);
  }
  process.stdout.write(JSON.stringify({ appMs, registered, firstInvocationMs, thenImportMs }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: appDir, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`Loading the app in ${appDir} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as AppLoad;
}

/** Time to import an ES module or require a file in a fresh Node process (ms), median of `runs`. */
export function measureModuleLoad(file: string, runs = 5): number {
  const load = file.endsWith('.mjs') ? `await import(require('node:url').pathToFileURL(${JSON.stringify(file)}).href)` : `require(${JSON.stringify(file)})`;
  const script = `(async()=>{const t=process.hrtime.bigint();${load};process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));})().catch((e)=>{process.stderr.write(String(e&&e.stack||e));process.exit(1);});`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: path.dirname(file), env: { ...process.env, NODE_OPTIONS: '' } });
    if (r.status !== 0) throw new Error(`Loading ${file} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    times.push(Number(r.stdout.trim().split('\n').pop()));
  }
  return median(times);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export interface ColdStart {
  /** Every registration file loaded together (the worker's startup), median. */
  app: number;
  /** Per function: the startup plus the import its first invocation makes, median. */
  functions: Record<string, number>;
  /** The Teams SDK chunk, imported by the bot's first request or the first notice, after the bot's own code (when found). */
  teamsSdk?: number;
  registered: string[];
}

/** Cold-start figures of a built app folder (see AppLoad). */
export function measureColdStart(result: Pick<PackageResult, 'appDir' | 'handlers'>, runs = 5, names = result.handlers.names): ColdStart {
  const app: number[] = [];
  const functions: Record<string, number> = {};
  const teams: number[] = [];
  let registered: string[] = [];
  const teamsChunk = chunkOf(result.handlers, 'shared/teams/host.ts');
  for (const name of names) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const load = loadAppOnce(result.appDir, name, name === 'teamsMessages' ? teamsChunk : undefined);
      app.push(load.appMs);
      times.push(load.appMs + (load.firstInvocationMs ?? 0));
      if (load.thenImportMs !== undefined) teams.push(load.thenImportMs);
      registered = load.registered;
    }
    functions[name] = median(times);
  }
  return { app: median(app), functions, teamsSdk: teams.length ? median(teams) : undefined, registered };
}

async function main(): Promise<void> {
  const started = Date.now();
  const result = await buildPackage();
  const rel = (p: string) => path.relative(REPO_ROOT, p);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`Packaged ${result.registrations.length} functions into ${rel(result.appDir)}/ (${result.files.length} files) and ${rel(result.zip!)} (${(fs.statSync(result.zip!).size / 1024).toFixed(0)} KiB) in ${seconds} s.`);
  const cold = measureColdStart(result, 3);
  console.log(`Instance start (the worker loads every ${APP_MAIN}): ${cold.app.toFixed(0)} ms, registering ${cold.registered.join(', ')}.`);
  console.log('First invocation of each function on a fresh instance (start + its code):');
  for (const reg of result.registrations) {
    const teams = teamsInputs(staticInputs(result.handlers, reg.name)).length ? '  (includes the Teams SDK)' : '';
    console.log(`  ${reg.name.padEnd(22)} ${reg.kind.padEnd(13)} ${cold.functions[reg.name].toFixed(0).padStart(5)} ms${teams}`);
  }
  if (cold.teamsSdk !== undefined) console.log(`  the Teams SDK, on the first Teams request or notice: +${cold.teamsSdk.toFixed(0)} ms`);
  console.log(`Deploy: azd deploy (azure.yaml's dist is ${PACKAGE_APP}; azd runs this script first), or`);
  console.log(`        cd ${PACKAGE_APP} && func azure functionapp publish <app> --no-build.`);
}

// Only when run as the package script itself (a bundle that includes this module, like the bench, has its own main).
// (`(^|/)package.js`: the teams:package bundle, teams-package.js, includes this module too.)
if (require.main === module && /(^|[\\/])package\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
