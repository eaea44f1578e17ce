// OpenTelemetry for NetGuard: one span per event and per sweep, a short span per finding that led to
// an action, and metrics for drift found, remediated, approvals waiting and time to approval.
// Everything here goes through @opentelemetry/api, which is a no-op until an SDK is registered, so
// the helpers cost next to nothing in tests and on a laptop. initTelemetry() registers the Azure
// Monitor distro only when APPLICATIONINSIGHTS_CONNECTION_STRING is set; the distro is loaded lazily
// (it pulls in the whole OpenTelemetry SDK and takes a noticeable time to import).
import {
  createNoopMeter,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Gauge,
  type Histogram,
  type MeterProvider,
  type Span,
} from '@opentelemetry/api';
import type { TokenCredential } from '@azure/core-auth';
import type { Finding } from './types';

export const TELEMETRY_NAME = 'aks-netguard';

/** Span and metric names, used by the Kusto queries in docs/operate.md. */
export const SPAN_NAMES = {
  event: 'netguard.event',
  sweep: 'netguard.sweep',
  finding: 'netguard.finding',
} as const;

export const METRIC_NAMES = {
  driftFound: 'netguard.drift.found',
  remediated: 'netguard.drift.remediated',
  approvalsWaiting: 'netguard.approvals.waiting',
  timeToApproval: 'netguard.approval.time_to_decision',
} as const;

/** Attribute keys (they land in customDimensions in Application Insights). */
export const ATTRIBUTES = {
  control: 'netguard.control',
  resourceId: 'netguard.resource_id',
  targetId: 'netguard.target_id',
  status: 'netguard.status',
  action: 'netguard.action',
  detail: 'netguard.detail',
  decision: 'netguard.decision',
} as const;

let initialized = false;

export interface InitTelemetryOptions {
  /** Where to read the settings; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Overrides the credential derived from APPLICATIONINSIGHTS_AUTHENTICATION_STRING (tests). */
  credential?: TokenCredential;
}

/**
 * Sends traces and metrics to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set;
 * otherwise does nothing and returns false. Safe to call from every function module: only the first
 * call with a connection string registers the SDK. With `Authorization=AAD` in
 * APPLICATIONINSIGHTS_AUTHENTICATION_STRING (the infra sets it; the App Insights resource accepts no
 * keys) telemetry is sent with the managed identity named by its `ClientId=`.
 */
export function initTelemetry(options: InitTelemetryOptions = {}): boolean {
  const env = options.env ?? process.env;
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return false;
  if (initialized) return true;
  const credential = options.credential ?? credentialFromAuthenticationString(env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { useAzureMonitor } = require('@azure/monitor-opentelemetry') as typeof import('@azure/monitor-opentelemetry');
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString, ...(credential ? { credential } : {}) },
    // The Functions host already records each invocation; NetGuard's own spans say what it did.
    instrumentationOptions: { http: { enabled: false } },
  });
  initialized = true;
  return true;
}

/**
 * `ClientId=<guid>;Authorization=AAD` → a managed identity credential for that client id;
 * `Authorization=AAD` alone → the system-assigned identity; anything else → undefined (key-based).
 */
export function credentialFromAuthenticationString(value: string | undefined): TokenCredential | undefined {
  if (!value) return undefined;
  const parts = new Map(
    value
      .split(';')
      .map((p) => p.split('='))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k.trim().toLowerCase(), v.trim()] as const),
  );
  if (parts.get('authorization')?.toLowerCase() !== 'aad') return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ManagedIdentityCredential } = require('@azure/identity') as typeof import('@azure/identity');
  const clientId = parts.get('clientid');
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

const tracer = () => trace.getTracer(TELEMETRY_NAME);

/**
 * Runs `fn` inside a span named `name` (SERVER kind, so Application Insights lists it under requests
 * with its duration and success). A thrown error marks the span failed, is recorded on it, and is
 * rethrown unchanged.
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T> | T): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.SERVER, attributes }, async (span) => {
    try {
      const result = await fn(span);
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

// Instruments are created per meter provider: @opentelemetry/api hands out no-op meters until an SDK
// registers one, and (unlike tracers) those no-op meters never start recording later.
interface Instruments {
  driftFound: Counter;
  remediated: Counter;
  approvalsWaiting: Gauge;
  timeToApproval: Histogram;
}
let instrumentsFor: { provider: MeterProvider; instruments: Instruments } | undefined;

function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (instrumentsFor?.provider !== provider) {
    const meter = provider.getMeter(TELEMETRY_NAME);
    instrumentsFor = {
      provider,
      instruments: {
        driftFound: meter.createCounter(METRIC_NAMES.driftFound, { description: 'Findings with status drift', unit: '{finding}' }),
        remediated: meter.createCounter(METRIC_NAMES.remediated, { description: 'Drift fixed and verified by NetGuard', unit: '{finding}' }),
        approvalsWaiting: meter.createGauge(METRIC_NAMES.approvalsWaiting, { description: 'Approval requests not decided yet', unit: '{approval}' }),
        timeToApproval: meter.createHistogram(METRIC_NAMES.timeToApproval, {
          description: 'Time from an approval request to its decision',
          unit: 's',
        }),
      },
    };
  }
  return instrumentsFor.instruments;
}

/**
 * Counts the findings of a run (drift found, remediated per control) and records one short span per
 * finding that led to an action or an error, so "what did NetGuard change" is one query away.
 */
export function recordFindings(findings: readonly Finding[]): void {
  const m = instruments();
  for (const f of findings) {
    if (f.status === 'drift') m.driftFound.add(1, { [ATTRIBUTES.control]: f.control, [ATTRIBUTES.action]: f.action });
    if (f.action === 'remediated') m.remediated.add(1, { [ATTRIBUTES.control]: f.control });
    if (f.action === 'none' && f.status !== 'error') continue;
    if (f.action === 'reported' && f.status !== 'error') continue;
    const span = tracer().startSpan(SPAN_NAMES.finding, {
      kind: SpanKind.INTERNAL,
      attributes: {
        [ATTRIBUTES.control]: f.control,
        [ATTRIBUTES.resourceId]: f.resourceId,
        [ATTRIBUTES.targetId]: f.targetId,
        [ATTRIBUTES.status]: f.status,
        [ATTRIBUTES.action]: f.action,
        [ATTRIBUTES.detail]: f.detail,
      },
    });
    span.setStatus({ code: f.status === 'error' ? SpanStatusCode.ERROR : SpanStatusCode.OK });
    span.end();
  }
}

/**
 * How many approvals are pending right now, as counted in the store (e.g. `listApprovals('pending')`
 * after a sweep or a decision). A gauge of the stored count, not a running sum in memory: Flex
 * Consumption instances come and go, and only the store knows the real number.
 */
export function recordApprovalsWaiting(pending: number): void {
  instruments().approvalsWaiting.record(pending);
}

/**
 * An approval was decided (approved, rejected, exempted or expired): the time it waited.
 * `requestedAt`/`decidedAt` come from the approval record, not from a clock here.
 */
export function recordApprovalDecision(control: string, decision: string, requestedAt: Date, decidedAt: Date): void {
  const m = instruments();
  const seconds = Math.max(0, (decidedAt.getTime() - requestedAt.getTime()) / 1000);
  m.timeToApproval.record(seconds, { [ATTRIBUTES.control]: control, [ATTRIBUTES.decision]: decision });
}

/** True once a metrics SDK is registered (Application Insights, or a test's in-memory reader). */
function metricsOn(): boolean {
  return metrics.getMeterProvider().getMeter(TELEMETRY_NAME).constructor !== createNoopMeter().constructor;
}

/**
 * Counts the pending approvals in the store and records the gauge. Only when metrics are on (no table
 * query on a laptop or in tests without an SDK), and never fails the invocation it runs in.
 */
export async function reportApprovalsWaiting(store: { listApprovals(state: 'pending'): Promise<unknown[]> } | undefined, warn?: (line: string) => void): Promise<void> {
  if (!store || !metricsOn()) return;
  try {
    recordApprovalsWaiting((await store.listApprovals('pending')).length);
  } catch (err) {
    warn?.(`netguard telemetry: could not count the approvals waiting: ${err instanceof Error ? err.message : String(err)}`);
  }
}
