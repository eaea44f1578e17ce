// Wires settings → ARM gateway → store → engine once per process (a Function App instance or a CLI run).
import { ArmGateway } from './azure/arm';
import type { TopologyCacheStore } from './azure/topologyCache';
import { loadSettings, type Settings } from './config';
import { Engine } from './engine/engine';
import type { NoticeSink } from './notify/types';
import { storeFromEnvironment } from './store/tables';
import type { StateStore } from './store/types';

export interface Runtime {
  settings: Settings;
  arm: ArmGateway;
  store?: StateStore;
  engine: Engine;
  notices?: NoticeSink;
}

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
  warn?: (line: string) => void;
  /** Overrides for tests and the demo. */
  store?: StateStore;
  notices?: NoticeSink;
  pollIntervalMs?: number;
  clock?: () => Date;
}

/** Builds a runtime; throws ConfigError (before any request) on bad settings. */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const env = options.env ?? process.env;
  const settings = loadSettings(env);
  const arm = new ArmGateway({ endpoint: settings.armEndpoint, pollIntervalMs: options.pollIntervalMs });
  const store = options.store ?? storeFromEnvironment(env);
  const notices = options.notices ?? noticeSinkFromEnvironment(env);
  const topologyCache = store && isTopologyCache(store) ? store : undefined;
  const engine = new Engine({ arm, settings, store, topologyCache, notices, progress: options.progress, warn: options.warn, clock: options.clock });
  return { settings, arm, store, engine, notices };
}

/** The Teams notice queue, when storage is configured (delivery is the deliverNotices function's job). */
function noticeSinkFromEnvironment(env: NodeJS.ProcessEnv): NoticeSink | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('./notify/queueSink') as { noticeSinkFromEnvironment?: (e: NodeJS.ProcessEnv) => NoticeSink | undefined };
    return mod.noticeSinkFromEnvironment?.(env);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

function isTopologyCache(store: StateStore): store is StateStore & TopologyCacheStore {
  return typeof (store as Partial<TopologyCacheStore>).replaceTopology === 'function';
}

let cached: Runtime | undefined;

/** One runtime per Function App instance, built on first use (not at import: cold starts stay cheap). */
export function functionRuntime(): Runtime {
  cached ??= createRuntime({ warn: (line) => console.warn(line) });
  return cached;
}

/** Tests: forget the cached runtime (after changing process.env). */
export function resetFunctionRuntime(runtime?: Runtime): void {
  cached = runtime;
}
