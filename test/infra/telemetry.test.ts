// Telemetry helpers recorded through a real OpenTelemetry SDK (in-memory exporters), and the switch
// that keeps the Azure Monitor distro off unless a connection string is set.
import { metrics, trace } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  ATTRIBUTES,
  credentialFromAuthenticationString,
  initTelemetry,
  METRIC_NAMES,
  recordApprovalDecision,
  recordApprovalsWaiting,
  recordFindings,
  SPAN_NAMES,
  withSpan,
} from '../../shared/telemetry';
import type { Finding } from '../../shared/types';

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new CollectingReader();

beforeAll(() => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});

afterAll(() => {
  trace.disable();
  metrics.disable();
});

beforeEach(() => spans.reset());

/** Sum of a metric's data points whose attributes include `where`. */
async function sumOf(name: string, where: Record<string, string> = {}): Promise<number> {
  const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
  let total = 0;
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints) {
        if (!Object.entries(where).every(([k, v]) => point.attributes[k] === v)) continue;
        const value = point.value as number | { sum?: number };
        total += typeof value === 'number' ? value : (value.sum ?? 0);
      }
    }
  }
  return total;
}

/** The value of a gauge (its single data point). */
async function lastValueOf(name: string): Promise<number | undefined> {
  const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  return metric?.dataPoints[0]?.value as number | undefined;
}

const CLUSTER = '/subscriptions/6a8f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1';
const NSG = '/subscriptions/6a8f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/mc_rg1/providers/Microsoft.Network/networkSecurityGroups/aks-agentpool';
const finding = (f: Partial<Finding>): Finding => ({
  control: 'node-ssh-deny',
  resourceId: CLUSTER,
  targetId: NSG,
  status: 'compliant',
  action: 'none',
  detail: 'SSH to the nodes is denied.',
  ...f,
});

describe('initTelemetry', () => {
  it('does nothing without APPLICATIONINSIGHTS_CONNECTION_STRING', () => {
    expect(initTelemetry({ env: {} })).toBe(false);
    expect(initTelemetry({ env: { APPLICATIONINSIGHTS_CONNECTION_STRING: '  ' } })).toBe(false);
  });

  it('uses the managed identity named in APPLICATIONINSIGHTS_AUTHENTICATION_STRING', () => {
    expect(credentialFromAuthenticationString(undefined)).toBeUndefined();
    expect(credentialFromAuthenticationString('Authorization=key')).toBeUndefined();
    const credential = credentialFromAuthenticationString('ClientId=0b5e1e0d-1111-4222-8333-944455556666;Authorization=AAD');
    expect(credential?.constructor.name).toBe('ManagedIdentityCredential');
  });
});

describe('withSpan', () => {
  it('records one span with its attributes and returns what the work returned', async () => {
    const result = await withSpan(SPAN_NAMES.event, { 'netguard.operation': 'Microsoft.Network/networkSecurityGroups/write' }, async () => 42);
    expect(result).toBe(42);
    const [span] = spans.getFinishedSpans();
    expect(span.name).toBe('netguard.event');
    expect(span.attributes['netguard.operation']).toBe('Microsoft.Network/networkSecurityGroups/write');
    expect(span.status.code).toBe(1); // OK
  });

  it('marks the span failed and rethrows the same error', async () => {
    const boom = new Error('ARM answered 503');
    await expect(withSpan(SPAN_NAMES.sweep, {}, () => Promise.reject(boom))).rejects.toBe(boom);
    const [span] = spans.getFinishedSpans();
    expect(span.name).toBe('netguard.sweep');
    expect(span.status).toEqual({ code: 2, message: 'ARM answered 503' }); // ERROR
    expect(span.events.map((e) => e.name)).toContain('exception');
  });
});

describe('metrics and finding spans', () => {
  it('counts drift found and remediated per control, and records a span only for findings that led somewhere', async () => {
    const driftBefore = await sumOf(METRIC_NAMES.driftFound, { [ATTRIBUTES.control]: 'node-ssh-deny' });
    const fixedBefore = await sumOf(METRIC_NAMES.remediated, { [ATTRIBUTES.control]: 'node-ssh-deny' });
    recordFindings([
      finding({}),
      finding({ status: 'drift', action: 'remediated', detail: 'Added aks-netguard-deny-node-ssh at priority 100.' }),
      finding({ status: 'drift', action: 'reported', control: 'network-policy', targetId: CLUSTER }),
      finding({ status: 'error', action: 'none', detail: 'ARM answered 403 AuthorizationFailed.' }),
    ]);
    expect((await sumOf(METRIC_NAMES.driftFound, { [ATTRIBUTES.control]: 'node-ssh-deny' })) - driftBefore).toBe(1);
    expect((await sumOf(METRIC_NAMES.remediated, { [ATTRIBUTES.control]: 'node-ssh-deny' })) - fixedBefore).toBe(1);
    expect(await sumOf(METRIC_NAMES.driftFound, { [ATTRIBUTES.control]: 'network-policy' })).toBeGreaterThanOrEqual(1);

    const recorded = spans.getFinishedSpans().filter((s) => s.name === SPAN_NAMES.finding);
    expect(recorded.map((s) => [s.attributes[ATTRIBUTES.action], s.attributes[ATTRIBUTES.status]])).toEqual([
      ['remediated', 'drift'],
      ['none', 'error'],
    ]);
    expect(recorded[0].attributes[ATTRIBUTES.targetId]).toBe(NSG);
    expect(recorded[0].attributes[ATTRIBUTES.detail]).toBe('Added aks-netguard-deny-node-ssh at priority 100.');
  });

  it('reports the stored number of approvals waiting, and the time approvals waited for a decision', async () => {
    recordApprovalsWaiting(3);
    recordApprovalsWaiting(2);
    expect(await lastValueOf(METRIC_NAMES.approvalsWaiting)).toBe(2);

    recordApprovalDecision('api-authorized-ranges', 'approved', new Date('2026-11-20T10:00:00Z'), new Date('2026-11-20T10:07:30Z'));
    expect(await sumOf(METRIC_NAMES.timeToApproval, { [ATTRIBUTES.decision]: 'approved' })).toBe(450);
    // A decision recorded before its request (clock skew between instances) never counts as negative time.
    recordApprovalDecision('api-authorized-ranges', 'rejected', new Date('2026-11-20T10:00:05Z'), new Date('2026-11-20T10:00:00Z'));
    expect(await sumOf(METRIC_NAMES.timeToApproval, { [ATTRIBUTES.decision]: 'rejected' })).toBe(0);
  });
});
