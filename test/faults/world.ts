// The pieces one fault scenario runs on: the ARM stand-in seeded with drifted fleets (one in scope,
// one out of scope), the fault proxy in front of it, an Azurite that can be stopped and restarted
// on the same ports with its data kept, and the real CLI (bundled from the sources) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import type { ArmManagedCluster, ArmNetworkSecurityGroup } from '../../shared/azure/armTypes';
import { ArmSandbox } from '../../testkit/armServer';
import {
  clusterFromFixture,
  istioServiceMeshProfile,
  netGuardSshDenyRule,
  nsgFromFixture,
  securityRule,
  seedDriftedFleet,
  vnetWithSubnets,
  type SeededCluster,
} from '../../testkit/fleet';
import { startAzurite, type AzuriteInstance } from '../../testkit/azuriteProcess';
import { FaultProxy, type WriteObservation } from './faultProxy';
import { rngFor } from './prng';

/** The repository (found by walking up: this file also runs bundled from node_modules/.cache). */
function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'shared', 'cli', 'run.ts')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}
export const REPO_ROOT = findRepoRoot();

/** A uuid drawn from a seeded generator (reproducible subscription ids). */
export function seededUuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

// ---------------------------------------------------------------- the CLI under test

/**
 * Bundles the CLI from the sources (esbuild, as `npm run bench`/`package` bundle theirs) into the
 * repository's node_modules cache, so the child resolves its packages from node_modules. Returns the file.
 */
export async function bundleCli(tag: string): Promise<string> {
  const { build, stop } = await import('esbuild');
  const dir = path.join(REPO_ROOT, 'node_modules', '.cache', 'aks-netguard');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `faults-cli-${tag}-${process.pid}.js`);
  try {
    await build({ entryPoints: [path.join(REPO_ROOT, 'shared', 'cli', 'run.ts')], outfile: file, bundle: true, platform: 'node', format: 'cjs', packages: 'external', logLevel: 'warning' });
  } finally {
    // esbuild keeps a service process for later builds; none follow, so no child outlives the build.
    await stop();
  }
  return file;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed after the bound: the run did not end by itself. */
  hung: boolean;
}

export function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // Only what a user's shell would pass plus NetGuard's settings: no inherited Azure settings.
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '', ...extra };
}

/** Runs the CLI to its end, or kills it at `boundMs` and says so. */
export function runCli(cli: string, args: string[], env: NodeJS.ProcessEnv, boundMs: number, stdinText?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-200_000)));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdinText ?? '');
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, boundMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, hung });
    });
  });
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Ctrl-C, as a user stops it; true when it ended within the bound (else it is killed). */
  stop(boundMs: number): Promise<boolean>;
}

/** `aks-netguard serve --port 0`, ready once it prints its URL. */
export function startServe(cli: string, env: NodeJS.ProcessEnv, boundMs: number): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`serve did not start within ${boundMs} ms: ${err}`));
    }, boundMs);
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
    child.on('exit', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before it was ready: ${err}`));
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({
          url: m[1],
          child,
          stderr: () => err,
          stop: (bound) =>
            new Promise<boolean>((res) => {
              if (child.exitCode !== null || child.signalCode !== null) return res(true);
              const kill = setTimeout(() => {
                child.kill('SIGKILL');
                res(false);
              }, bound);
              child.once('exit', () => {
                clearTimeout(kill);
                res(true);
              });
              child.kill('SIGINT');
            }),
        });
      }
    });
  });
}

// ---------------------------------------------------------------- Azurite that can go away and come back

export class RestartableAzurite {
  private current: AzuriteInstance | undefined;
  private restarting: Promise<void> | undefined;
  outages = 0;

  private constructor(
    readonly connectionString: string,
    private readonly ports: { blob: number; queue: number; table: number },
    private readonly location: string,
    first: AzuriteInstance,
  ) {
    this.current = first;
  }

  static async start(): Promise<RestartableAzurite> {
    const location = fs.mkdtempSync(path.join(os.tmpdir(), 'netguard-faults-azurite-'));
    const first = await startAzurite({ location });
    const port = (u: string) => Number(new URL(u).port);
    return new RestartableAzurite(first.connectionString, { blob: port(first.blobEndpoint), queue: port(first.queueEndpoint), table: port(first.tableEndpoint) }, location, first);
  }

  /** Stops the emulator now and starts it again on the same ports after `downMs`, data kept. */
  outage(downMs: number): void {
    if (this.restarting) return;
    this.outages++;
    const old = this.current;
    this.current = undefined;
    this.restarting = (async () => {
      await old?.stop();
      await new Promise((r) => setTimeout(r, downMs));
      this.current = await startAzurite({ ports: this.ports, location: this.location });
    })().finally(() => {
      this.restarting = undefined;
    });
  }

  /** Resolves once the emulator is up (after an outage). */
  async up(): Promise<void> {
    await this.restarting;
  }

  async stop(): Promise<void> {
    await this.restarting?.catch(() => undefined);
    await this.current?.stop();
    fs.rmSync(this.location, { recursive: true, force: true });
  }

  /** Every row of every table whose name says audit or intent, as lower-cased JSON text. */
  async auditRows(): Promise<string[]> {
    await this.up();
    const service = TableServiceClient.fromConnectionString(this.connectionString, { allowInsecureConnection: true });
    const rows: string[] = [];
    for await (const t of service.listTables()) {
      if (!t.name || !/audit|intent/i.test(t.name)) continue;
      const client = TableClient.fromConnectionString(this.connectionString, t.name, { allowInsecureConnection: true });
      for await (const e of client.listEntities()) rows.push(JSON.stringify(e).toLowerCase());
    }
    return rows;
  }
}

// ---------------------------------------------------------------- the fleets

/**
 * Issue 9, item 1: NetGuard's own Deny, broadened by an admin to source `*` at 400, sits between an
 * Allow from the VNet at 300 (which shadows it: drift) and an Allow from `*` at 500. Rewriting the
 * Deny to the AKS sources only would let SSH from the internet through the Allow at 500.
 */
export function seedBroadenedDenyCluster(sandbox: ArmSandbox, subscriptionId: string, resourceGroup: string, octet: number): SeededCluster {
  const name = 'aks-broadened-deny';
  const nodePrefix = `10.${octet}.0.0/22`;
  const nsg = nsgFromFixture({
    subscriptionId,
    resourceGroup,
    name: `${name}-nodes-nsg`,
    securityRules: [
      securityRule('allow-ssh-vnet', { protocol: 'Tcp', sourceAddressPrefix: 'VirtualNetwork', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 300, direction: 'Inbound' }),
      { ...netGuardSshDenyRule(['*'], 400) },
      securityRule('allow-ssh-any', { protocol: 'Tcp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '22', access: 'Allow', priority: 500, direction: 'Inbound' }),
    ],
  });
  sandbox.put(nsg);
  const vnet = vnetWithSubnets({ subscriptionId, resourceGroup, name: `${name}-vnet`, addressPrefixes: [`10.${octet}.0.0/16`], subnets: [{ name: 'nodes', addressPrefix: nodePrefix, nsgId: nsg.id }] });
  sandbox.put(vnet);
  const nodeSubnetId = `${vnet.id}/subnets/nodes`;
  const cluster = clusterFromFixture({
    subscriptionId,
    resourceGroup,
    name,
    nodeSubnetId,
    properties: { apiServerAccessProfile: { authorizedIPRanges: ['203.0.113.0/24'] }, serviceMeshProfile: istioServiceMeshProfile() },
  });
  cluster.properties.networkProfile = { ...(cluster.properties.networkProfile ?? {}), networkPolicy: 'calico', outboundType: 'userDefinedRouting' };
  delete cluster.properties.networkProfile.loadBalancerProfile;
  sandbox.put(cluster);
  return {
    label: 'broadened',
    clusterId: cluster.id,
    nodeSubnetIds: [nodeSubnetId],
    nsgIds: [nsg.id],
    problem: 'NetGuard’s deny broadened to * at 400 between Allow VNet at 300 and Allow * at 500.',
    driftedControls: ['node-ssh-deny'],
  };
}

export interface World {
  seed: number;
  sandbox: ArmSandbox;
  proxy: FaultProxy;
  inScope: string;
  outOfScope: string;
  /** In-scope clusters NetGuard may act on. */
  clusters: SeededCluster[];
  outClusters: SeededCluster[];
  writes: WriteObservation[];
  /** Called after each write the stand-in applied (2xx), in order. */
  afterAppliedWrite?: (n: number) => void;
  stop(): Promise<void>;
}

/** The top-level resource a request path touches (a rule write touches its NSG), or undefined. */
export function topIdOf(p: string): string | undefined {
  const seg = p.split('/').filter(Boolean);
  if (seg.length < 8 || seg[0].toLowerCase() !== 'subscriptions' || seg[2].toLowerCase() !== 'resourcegroups' || seg[4].toLowerCase() !== 'providers') return undefined;
  return `/${seg.slice(0, 8).join('/')}`;
}

export async function buildWorld(seed: number, scenario: string, options: { copies: number; rate: number }): Promise<World> {
  const random = rngFor(seed, `world:${scenario}`);
  const inScope = seededUuid(random);
  const outOfScope = seededUuid(random);
  const sandbox = await ArmSandbox.start({ lroPolls: 1 });
  const clusters: SeededCluster[] = [];
  for (let copy = 1; copy <= options.copies; copy++) {
    clusters.push(...seedDriftedFleet(sandbox, { subscriptionId: inScope, resourceGroup: `rg-fleet-${copy}` }).clusters);
  }
  clusters.push(seedBroadenedDenyCluster(sandbox, inScope, 'rg-broadened', 40));
  const outClusters = seedDriftedFleet(sandbox, { subscriptionId: outOfScope, resourceGroup: 'rg-not-ours' }).clusters;

  const writes: WriteObservation[] = [];
  let applied = 0;
  let raceCount = 0;
  const world: World = {
    seed,
    sandbox,
    proxy: undefined as unknown as FaultProxy,
    inScope,
    outOfScope,
    clusters,
    outClusters,
    writes,
    stop: async () => {
      await world.proxy.stop();
      await sandbox.stop();
    },
  };
  world.proxy = await FaultProxy.start({
    upstream: sandbox.endpoint,
    seed,
    rate: options.rate,
    snapshot: (p) => {
      const top = topIdOf(p);
      return top ? sandbox.get(top) : undefined;
    },
    onWrite: (o) => {
      writes.push(o);
      if (o.request.upstreamStatus >= 200 && o.request.upstreamStatus < 300 && o.request.method !== 'POST') world.afterAppliedWrite?.(++applied);
    },
    // Another writer touches the resource between NetGuard's read and its write: a tag, not access.
    race: (p) => {
      const top = topIdOf(p);
      const current = top ? sandbox.get<ArmManagedCluster | ArmNetworkSecurityGroup>(top) : undefined;
      if (!current) return false;
      sandbox.put({ ...current, tags: { ...(current.tags ?? {}), 'faults-race': String(++raceCount) }, etag: undefined, eTag: undefined } as unknown as ArmNetworkSecurityGroup);
      return true;
    },
  });
  return world;
}
