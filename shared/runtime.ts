// Wires settings → ARM gateway → store → engine once per process (a Function App instance or a CLI run).
import { ArmGateway, type ArmRetryOptions } from './azure/arm';
import type { TopologyCacheStore } from './azure/topologyCache';
import { loadSettings, type Settings } from './config';
import { Engine, type ExemptionSource } from './engine/engine';
import { noticeSinkFromEnvironment } from './notify/queueSink';
import type { DeferredUpdateSink } from './engine/deferred';
import { VerifyQueue } from './store/verifyQueue';
import { initTelemetry } from './telemetry';
// Only data-tables at run time: the Teams SDK is referenced there as types, never loaded.
import { teamsTablesFromEnvironment } from './teams/channels';
import type { NoticeSink } from './notify/types';
import { storeFromEnvironment } from './store/tables';
import type { StateStore } from './store/types';

export interface Runtime {
  settings: Settings;
  arm: ArmGateway;
  store?: StateStore;
  engine: Engine;
  notices?: NoticeSink;
  clock?: () => Date;
}

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
  warn?: (line: string) => void;
  /** Overrides for tests and the demo. */
  store?: StateStore;
  notices?: NoticeSink;
  exemptions?: ExemptionSource;
  /** Start cluster updates and verify them from the verify queue instead of waiting (functions). */
  deferClusterUpdates?: boolean | DeferredUpdateSink;
  pollIntervalMs?: number;
  /** Back-off of ARM retries (tests shorten it; the timeout of each try is a setting). */
  armRetry?: ArmRetryOptions;
  clock?: () => Date;
}

/** Builds a runtime; throws ConfigError (before any request) on bad settings. */
export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const env = options.env ?? process.env;
  const settings = loadSettings(env);
  const arm = new ArmGateway({
    endpoint: settings.armEndpoint,
    pollIntervalMs: options.pollIntervalMs,
    retryOptions: options.armRetry,
    requestTimeoutMs: settings.armTimeoutSeconds * 1000,
    subscriptions: settings.subscriptions,
  });
  const store = options.store ?? storeFromEnvironment(env);
  const notices = options.notices ?? noticeSinkFromEnvironment(env);
  const exemptions = options.exemptions ?? teamsTablesFromEnvironment(env);
  const topologyCache = store && isTopologyCache(store) ? store : undefined;
  const clock = options.clock ?? (() => new Date());
  const deferClusterUpdates =
    options.deferClusterUpdates === true ? VerifyQueue.fromEnvironment(env) : options.deferClusterUpdates || undefined;
  const engine = new Engine({ arm, settings, store, topologyCache, notices, exemptions, deferClusterUpdates, progress: options.progress, warn: options.warn, clock });
  return { settings, arm, store, engine, notices, clock };
}

function isTopologyCache(store: StateStore): store is StateStore & TopologyCacheStore {
  return typeof (store as Partial<TopologyCacheStore>).replaceTopology === 'function';
}

let cached: Runtime | undefined;

/** One runtime per Function App instance, built on first use (not at import: cold starts stay cheap). */
export function functionRuntime(): Runtime {
  if (!cached) {
    initTelemetry(); // Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set; else nothing
    cached = createRuntime({ warn: (line) => console.warn(line), deferClusterUpdates: true });
  }
  return cached;
}

/** Tests: forget the cached runtime (after changing process.env). */
export function resetFunctionRuntime(runtime?: Runtime): void {
  cached = runtime;
}
