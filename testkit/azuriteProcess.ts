// Starts Azurite (the local Azure Storage emulator) from node_modules as a child process on free
// loopback ports. Used by the tests and by the CLI's `demo` command, so both run the same way.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Azurite's fixed development account; the key is public (it is printed in Microsoft's docs). */
export const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const LOOPBACK = '127.0.0.1';

export interface AzuriteInstance {
  /** An explicit connection string for these ports (http, so clients need allowInsecureConnection). */
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  /** Kills the child and resolves once it has exited. Safe to call more than once. */
  stop(): Promise<void>;
  /**
   * A crash, for fault tests: SIGKILL at once, so Azurite answers no request after this call returns
   * (its in-memory data is gone). Resolves once it has exited.
   */
  kill(): Promise<void>;
}

export interface StartAzuriteOptions {
  /**
   * Upper bound on waiting for the endpoints to answer, per attempt. It is only a safety net against
   * a child that neither answers nor exits: readiness is decided by polling the ports, and a busy
   * machine may take many seconds to start Node and Azurite, so the default is generous (5 min).
   */
  readyTimeoutMs?: number;
  /** How many times to pick fresh ports when the child exits during start (another process took a port). */
  attempts?: number;
  /** Fixed ports instead of free ones (to restart an emulator where its clients expect it). */
  ports?: { blob: number; queue: number; table: number };
  /** Keep the data in this folder (survives a restart) instead of in memory. */
  location?: string;
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }, host = LOOPBACK): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT_NAME}`,
    `AccountKey=${AZURITE_ACCOUNT_KEY}`,
    `BlobEndpoint=http://${host}:${ports.blob}/${AZURITE_ACCOUNT_NAME}`,
    `QueueEndpoint=http://${host}:${ports.queue}/${AZURITE_ACCOUNT_NAME}`,
    `TableEndpoint=http://${host}:${ports.table}/${AZURITE_ACCOUNT_NAME}`,
  ].join(';') + ';';
}

/**
 * The azurite entry script, found through its package.json so no shell shim is involved. Looked up
 * from this module and from the working directory (a bundled CLI lives outside node_modules' reach).
 */
function azuriteScript(): string {
  let pkgPath: string;
  try {
    pkgPath = require.resolve('azurite/package.json', { paths: [__dirname, process.cwd()] });
  } catch {
    throw new Error('Azurite is not installed: run `npm ci` (it is a devDependency of aks-netguard).');
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: Record<string, string> | string };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.azurite;
  if (!bin) throw new Error(`Azurite: ${pkgPath} names no "azurite" bin.`);
  return join(dirname(pkgPath), bin);
}

/** Ports that were free a moment ago; all held open together so the three differ. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, LOOPBACK, () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Resolves true once something answers HTTP on the port (any status: Azurite rejects unsigned calls). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: LOOPBACK, port, path: `/${AZURITE_ACCOUNT_NAME}`, method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Children still running when this process exits are killed, so a forgotten stop() leaves no orphan
// holding its ports.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    if (!(await waitForExit(child, 5000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 5000);
    }
  }
  running.delete(child);
}

async function startOnce(readyTimeoutMs: number, options: StartAzuriteOptions): Promise<AzuriteInstance> {
  const [blob, queue, table] = options.ports ? [options.ports.blob, options.ports.queue, options.ports.table] : await freePorts(3);
  const child = spawn(
    process.execPath,
    [
      azuriteScript(),
      '--silent',
      // --location and --inMemoryPersistence exclude each other (Azurite exits with an error).
      ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--blobHost', LOOPBACK, '--blobPort', String(blob),
      '--queueHost', LOOPBACK, '--queuePort', String(queue),
      '--tableHost', LOOPBACK, '--tablePort', String(table),
    ],
    // A neutral cwd: Azurite treats the cwd as its workspace.
    { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true },
  );
  running.add(child);
  killAllOnExit();
  // A forgotten stop() must not keep a CLI alive; the exit hook above still kills the child.
  child.unref();

  // Keep the tail of the output for the error message when the start fails.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', keep);
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));

  // Ready when all three endpoints answer. No short deadline: on a loaded machine Node alone can take
  // many seconds to start, and a child that dies is noticed at once (its exit ends the wait).
  const deadline = Date.now() + readyTimeoutMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline) {
    if (spawnError || exited || child.exitCode !== null || child.signalCode !== null) break;
    const up = await Promise.all([answers(table), answers(queue), answers(blob)]);
    if (up.every(Boolean)) {
      let stopped: Promise<void> | undefined;
      return {
        connectionString: azuriteConnectionString({ blob, queue, table }),
        blobEndpoint: `http://${LOOPBACK}:${blob}/${AZURITE_ACCOUNT_NAME}`,
        queueEndpoint: `http://${LOOPBACK}:${queue}/${AZURITE_ACCOUNT_NAME}`,
        tableEndpoint: `http://${LOOPBACK}:${table}/${AZURITE_ACCOUNT_NAME}`,
        stop: () => (stopped ??= stopChild(child)),
        kill: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          return (stopped ??= stopChild(child));
        },
      };
    }
    await sleep(100);
  }
  const diedEarly = !!spawnError || child.exitCode !== null || child.signalCode !== null;
  await stopChild(child);
  const why = spawnError
    ? spawnError.message
    : child.exitCode !== null || child.signalCode !== null
      ? `it exited (${child.exitCode ?? child.signalCode})`
      : `its endpoints did not answer within ${readyTimeoutMs} ms`;
  throw new AzuriteStartError(`Azurite did not start on ports ${blob}/${queue}/${table}: ${why}.${output.trim() ? ` Output: ${output.trim()}` : ''}`, diedEarly);
}

class AzuriteStartError extends Error {
  constructor(
    message: string,
    /** The child exited (e.g. a port was taken): worth another try on fresh ports. */
    readonly diedEarly: boolean,
  ) {
    super(message);
    this.name = 'AzuriteStartError';
  }
}

/** Starts Azurite on free loopback ports and waits until blob, queue and table endpoints answer. */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteInstance> {
  // Fixed ports cannot be re-picked, so one attempt; a timeout is not retried either (it would only
  // multiply the wait of a machine that is already slow).
  const attempts = options.ports ? 1 : Math.max(1, options.attempts ?? 3);
  const readyTimeoutMs = options.readyTimeoutMs ?? 300_000;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await startOnce(readyTimeoutMs, options);
    } catch (e) {
      lastError = e;
      if (!(e instanceof AzuriteStartError && e.diedEarly)) break;
    }
  }
  throw lastError;
}
