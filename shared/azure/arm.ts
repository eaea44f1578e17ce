// The only door to Azure Resource Manager. Real SDK clients (one set per subscription, cached) carry
// every request through their pipelines: credential, retries (429 Retry-After honoured), user agent.
// Resources are read and written as raw ARM JSON so nothing unknown to an SDK model is ever dropped.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { NetworkManagementClient } from '@azure/arm-network';
import { SubscriptionClient } from '@azure/arm-resources-subscriptions';
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicyName,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
  type Pipeline,
  type PipelinePolicy,
} from '@azure/core-rest-pipeline';
import { ConfigError } from '../config';
import type { SecurityRuleProperties } from './armTypes';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmVirtualNetwork } from './armTypes';
import { ArmError, VerificationError } from './errors';
import { lastSegment, parentId, parseResourceId, resourceGroupOf, subscriptionOf } from './ids';
import { subscriptionScopePolicy } from './scope';
import type { Inventory } from './topology';

export const NETWORK_API_VERSION = '2026-01-01';
export const AKS_API_VERSION = '2026-01-01';
const SANDBOX_TOKEN = 'netguard-sandbox-token';
const callScope = new AsyncLocalStorage<ArmCallCounter>();

export interface ArmGatewayOptions {
  /** ARM base URL (AKS_NETGUARD_ARM_ENDPOINT). */
  endpoint: string;
  /** For https endpoints; default DefaultAzureCredential (created lazily, never for the sandbox). */
  credential?: TokenCredential;
  /** Retries of the SDK pipeline (tests shorten the delays). */
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Poll interval for long-running operations when the service gives no Retry-After. */
  pollIntervalMs?: number;
  /** AKS_NETGUARD_SUBSCRIPTIONS: requests naming any other subscription are refused (scope.ts). */
  subscriptions?: readonly string[];
}

export interface ArmCallCounter {
  total: number;
  reads: number;
  writes: number;
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Decides how to authenticate to an endpoint: plain http only to loopback (the sandbox, with a fixed
 * token); plain http anywhere else is refused before any request, so a real token never travels in clear.
 */
export function endpointKind(endpoint: string): 'azure' | 'sandbox' {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`AKS_NETGUARD_ARM_ENDPOINT: "${endpoint}" is not a URL.`);
  }
  if (url.protocol === 'https:') return 'azure';
  if (url.protocol === 'http:') {
    if (isLoopbackHost(url.hostname)) return 'sandbox';
    throw new ConfigError(
      `AKS_NETGUARD_ARM_ENDPOINT: refusing plain http to ${url.host}; only loopback sandboxes may use http, real endpoints need https.`,
    );
  }
  throw new ConfigError(`AKS_NETGUARD_ARM_ENDPOINT: "${endpoint}" must be an http(s) URL.`);
}

/** Long-running write started: where to poll, and the body the PUT answered. */
export interface StartedOperation {
  resourceId: string;
  /** Azure-AsyncOperation (or Location) URL; undefined when the write completed synchronously. */
  statusUrl?: string;
  retryAfterMs?: number;
}

export class ArmGateway {
  readonly endpoint: string;
  readonly kind: 'azure' | 'sandbox';
  readonly calls: ArmCallCounter = { total: 0, reads: 0, writes: 0 };
  private readonly network = new Map<string, NetworkManagementClient>();
  private readonly aks = new Map<string, ContainerServiceClient>();
  private subscriptionClient?: SubscriptionClient;
  private credentialValue?: TokenCredential;
  private readonly httpClient: HttpClient = createDefaultHttpClient();
  private readonly pollIntervalMs: number;

  constructor(private readonly options: ArmGatewayOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.kind = endpointKind(this.endpoint);
    this.credentialValue = options.credential;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
  }

  private credential(): TokenCredential {
    if (this.kind === 'sandbox') return { getToken: async () => ({ token: SANDBOX_TOKEN, expiresOnTimestamp: Date.now() + 3600_000 }) };
    if (!this.credentialValue) {
      // Loaded lazily: @azure/identity costs ~0.4 s to import and is not needed for the sandbox.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
      this.credentialValue = new DefaultAzureCredential();
    }
    return this.credentialValue;
  }

  private clientOptions() {
    return {
      endpoint: this.endpoint,
      allowInsecureConnection: this.kind === 'sandbox',
      retryOptions: this.options.retryOptions,
      userAgentOptions: { userAgentPrefix: 'aks-netguard' },
    };
  }

  /** Sandbox: swap the TLS-only bearer policy for a fixed token; always: count calls, keep conditions off GETs. */
  private prepare(pipeline: Pipeline): void {
    if (this.kind === 'sandbox') {
      pipeline.removePolicy({ name: bearerTokenAuthenticationPolicyName });
      pipeline.addPolicy(
        {
          name: 'netguardSandboxToken',
          sendRequest: (req, next) => {
            req.headers.set('authorization', `Bearer ${SANDBOX_TOKEN}`);
            return next(req);
          },
        },
        { phase: 'Sign' },
      );
    }
    // Before the call counter: a refused request never reaches Azure, so it is not counted as a call.
    pipeline.addPolicy(subscriptionScopePolicy(this.options.subscriptions), { afterPhase: 'Retry' });
    const counter: PipelinePolicy = {
      name: 'netguardCallCounter',
      sendRequest: (req, next) => {
        for (const c of [this.calls, callScope.getStore()]) {
          if (!c) continue;
          c.total++;
          if (req.method === 'GET') c.reads++;
          else c.writes++;
        }
        // Custom If-Match headers are copied by the SDK onto poll GETs; a condition on a GET is wrong.
        if (req.method === 'GET') {
          req.headers.delete('if-match');
          req.headers.delete('if-none-match');
        }
        return next(req);
      },
    };
    pipeline.addPolicy(counter, { afterPhase: 'Retry' });
  }

  /**
   * Runs fn and counts the ARM requests it causes, apart from those of concurrent work on the same
   * gateway (a Function App instance handles several events at once).
   */
  async countCalls<T>(fn: () => Promise<T>): Promise<{ result: T; calls: ArmCallCounter }> {
    const calls: ArmCallCounter = { total: 0, reads: 0, writes: 0 };
    const result = await callScope.run(calls, fn);
    return { result, calls };
  }

  networkClient(subscriptionId: string): NetworkManagementClient {
    let c = this.network.get(subscriptionId.toLowerCase());
    if (!c) {
      c = new NetworkManagementClient(this.credential(), subscriptionId, this.clientOptions());
      this.prepare(c.pipeline);
      this.network.set(subscriptionId.toLowerCase(), c);
    }
    return c;
  }

  aksClient(subscriptionId: string): ContainerServiceClient {
    let c = this.aks.get(subscriptionId.toLowerCase());
    if (!c) {
      c = new ContainerServiceClient(this.credential(), subscriptionId, this.clientOptions());
      this.prepare(c.pipeline);
      this.aks.set(subscriptionId.toLowerCase(), c);
    }
    return c;
  }

  private subscriptions(): SubscriptionClient {
    if (!this.subscriptionClient) {
      this.subscriptionClient = new SubscriptionClient(this.credential(), this.clientOptions());
      this.prepare(this.subscriptionClient.pipeline);
    }
    return this.subscriptionClient;
  }

  /** Every subscription the identity can list. */
  async listSubscriptionIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const s of this.subscriptions().subscriptions.list()) if (s.subscriptionId) ids.push(s.subscriptionId);
    return ids;
  }

  // ---- raw JSON through an SDK client's pipeline --------------------------------------------

  private pipelineFor(resourcePath: string): Pipeline {
    const sub = subscriptionOf(resourcePath);
    return /\/providers\/Microsoft\.ContainerService\//i.test(resourcePath) ? this.aksClient(sub).pipeline : this.networkClient(sub).pipeline;
  }

  private url(pathOrUrl: string, apiVersion: string): string {
    if (/^https?:\/\//i.test(pathOrUrl)) return pathOrUrl;
    const sep = pathOrUrl.includes('?') ? '&' : '?';
    return `${this.endpoint}${pathOrUrl}${sep}api-version=${apiVersion}`;
  }

  private async send(
    method: 'GET' | 'PUT' | 'DELETE',
    pathOrUrl: string,
    apiVersion: string,
    pipeline: Pipeline,
    opts: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: any; headers: Record<string, string> }> {
    const url = this.url(pathOrUrl, apiVersion);
    const headers = createHttpHeaders({ accept: 'application/json', ...(opts.headers ?? {}) });
    if (opts.body !== undefined) headers.set('content-type', 'application/json');
    const request = createPipelineRequest({
      url,
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      allowInsecureConnection: this.kind === 'sandbox',
    });
    const response = await pipeline.sendRequest(this.httpClient, request);
    let body: any;
    if (response.bodyAsText) {
      try {
        body = JSON.parse(response.bodyAsText);
      } catch {
        body = undefined;
      }
    }
    const flat: Record<string, string> = {};
    for (const [k, v] of response.headers) flat[k.toLowerCase()] = v;
    if (response.status >= 400) {
      const code = body?.error?.code as string | undefined;
      const message = (body?.error?.message as string | undefined) ?? `${method} ${new URL(url).pathname} answered ${response.status}`;
      throw new ArmError(response.status, code, message, method, url);
    }
    return { status: response.status, body, headers: flat };
  }

  async getJson<T>(id: string, apiVersion: string): Promise<{ body: T; etag?: string }> {
    const r = await this.send('GET', id, apiVersion, this.pipelineFor(id));
    return { body: r.body as T, etag: r.headers['etag'] };
  }

  /** Follows nextLink; ARM calls grow with pages, not with resources. */
  async listJson<T>(path: string, apiVersion: string): Promise<T[]> {
    const pipeline = this.pipelineFor(path);
    const items: T[] = [];
    let next: string | undefined = path;
    while (next) {
      const r = await this.send('GET', next, apiVersion, pipeline);
      items.push(...((r.body?.value ?? []) as T[]));
      next = r.body?.nextLink || undefined;
    }
    return items;
  }

  // ---- reads ---------------------------------------------------------------------------------

  async getCluster(id: string): Promise<{ cluster: ArmManagedCluster; etag?: string }> {
    const { body, etag } = await this.getJson<ArmManagedCluster>(id, AKS_API_VERSION);
    return { cluster: body, etag: etag ?? body.eTag };
  }

  async getNsg(id: string): Promise<ArmNetworkSecurityGroup> {
    return (await this.getJson<ArmNetworkSecurityGroup>(id, NETWORK_API_VERSION)).body;
  }

  async getVnet(id: string): Promise<ArmVirtualNetwork> {
    return (await this.getJson<ArmVirtualNetwork>(id, NETWORK_API_VERSION)).body;
  }

  /** Three paged list calls per subscription: clusters, NSGs, VNets (with their subnets). */
  async readInventory(subscriptionId: string): Promise<Inventory> {
    const base = `/subscriptions/${subscriptionId}/providers`;
    const [clusters, nsgs, vnets] = await Promise.all([
      this.listJson<ArmManagedCluster>(`${base}/Microsoft.ContainerService/managedClusters`, AKS_API_VERSION),
      this.listJson<ArmNetworkSecurityGroup>(`${base}/Microsoft.Network/networkSecurityGroups`, NETWORK_API_VERSION),
      this.listJson<ArmVirtualNetwork>(`${base}/Microsoft.Network/virtualNetworks`, NETWORK_API_VERSION),
    ]);
    return { clusters, nsgs, vnets };
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Creates (If-None-Match: *) or repairs (If-Match: etag) a security rule through the SDK's typed
   * operation and waits for it; a stale condition surfaces as ArmError 412.
   */
  async putSecurityRule(nsgId: string, ruleName: string, properties: SecurityRuleProperties, ifMatch?: string): Promise<ArmSecurityRule> {
    const client = this.networkClient(subscriptionOf(nsgId));
    const { provisioningState: _ignored, ...props } = properties;
    const conditional: Record<string, string> = ifMatch ? { 'If-Match': ifMatch } : { 'If-None-Match': '*' };
    try {
      // The poller ends with a GET of the rule: that read-back is what the engine verifies.
      const written = await client.securityRules.createOrUpdate(resourceGroupOf(nsgId), lastSegment(nsgId), ruleName, { name: ruleName, ...props } as any, {
        requestOptions: { headers: conditional },
        updateIntervalInMs: this.pollIntervalMs,
      });
      return wireRule(written as unknown as Record<string, unknown>, ruleName);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      // The PUT was accepted but the poller's closing GET finds no rule: the write did not take.
      if (status === 404 && (err as { request?: { method?: string } }).request?.method === 'GET') {
        throw new VerificationError(`Azure accepted the write of the rule ${ruleName} in ${lastSegment(nsgId)}, but re-reading finds no such rule: the write did not take.`);
      }
      if (status !== undefined) {
        const e = err as Error & { code?: string };
        throw new ArmError(status, e.code, e.message, 'PUT', `${nsgId}/securityRules/${ruleName}`);
      }
      throw err;
    }
  }

  async getSecurityRule(nsgId: string, ruleName: string): Promise<ArmSecurityRule | undefined> {
    try {
      return (await this.getJson<ArmSecurityRule>(`${nsgId}/securityRules/${ruleName}`, NETWORK_API_VERSION)).body;
    } catch (err) {
      if (err instanceof ArmError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Starts a managed-cluster update: the resource exactly as read, sent back with If-Match. Returns
   * without waiting, so a function can end and verify later; waitForOperation() waits.
   */
  async startClusterUpdate(cluster: ArmManagedCluster, ifMatch: string | undefined): Promise<StartedOperation> {
    const headers: Record<string, string> = ifMatch ? { 'If-Match': ifMatch } : {};
    const r = await this.send('PUT', cluster.id, AKS_API_VERSION, this.pipelineFor(cluster.id), { body: cluster, headers });
    const statusUrl = r.headers['azure-asyncoperation'] ?? r.headers['location'];
    const retryAfter = Number(r.headers['retry-after']);
    return { resourceId: cluster.id, statusUrl, retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined };
  }

  /**
   * One look at a long-running operation: 'InProgress', 'Succeeded', or throws ArmError when it
   * ended Failed or Canceled. With no status URL the write completed when the PUT answered.
   */
  async operationStatus(op: StartedOperation): Promise<{ status: 'InProgress' | 'Succeeded'; retryAfterMs?: number }> {
    if (!op.statusUrl) return { status: 'Succeeded' };
    const r = await this.send('GET', op.statusUrl, AKS_API_VERSION, this.pipelineFor(op.resourceId));
    // Azure-AsyncOperation answers {status}; a Location URL answers 202 until done, then 200.
    const status = String(r.body?.status ?? (r.status === 200 ? 'Succeeded' : 'InProgress'));
    if (/^(failed|canceled|cancelled)$/i.test(status)) {
      throw new ArmError(undefined, r.body?.error?.code, `The update of ${op.resourceId} ended ${status}: ${r.body?.error?.message ?? 'no reason given'}`);
    }
    const ra = Number(r.headers['retry-after']);
    return { status: /^succeeded$/i.test(status) ? 'Succeeded' : 'InProgress', retryAfterMs: Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined };
  }

  /** Polls a long-running operation to its end; onProgress is called on every poll (CLI progress). */
  async waitForOperation(op: StartedOperation, onProgress?: (status: string) => void, timeoutMs = 30 * 60_000): Promise<void> {
    if (!op.statusUrl) return;
    const deadline = Date.now() + timeoutMs;
    let delay = op.retryAfterMs ?? this.pollIntervalMs;
    for (;;) {
      await new Promise((r) => setTimeout(r, delay));
      const { status, retryAfterMs } = await this.operationStatus(op);
      onProgress?.(status);
      if (status === 'Succeeded') return;
      if (Date.now() > deadline) throw new ArmError(408, 'Timeout', `The update of ${op.resourceId} did not finish in time.`);
      delay = retryAfterMs ?? this.pollIntervalMs;
    }
  }
}

const RULE_PROPERTY_NAMES: ReadonlyArray<keyof SecurityRuleProperties> = [
  'description', 'protocol', 'sourcePortRange', 'sourcePortRanges', 'destinationPortRange', 'destinationPortRanges',
  'sourceAddressPrefix', 'sourceAddressPrefixes', 'sourceApplicationSecurityGroups', 'destinationAddressPrefix',
  'destinationAddressPrefixes', 'destinationApplicationSecurityGroups', 'access', 'priority', 'direction', 'provisioningState',
];

/** The SDK's flattened SecurityRule model back in wire shape (properties nested). */
function wireRule(model: Record<string, unknown>, ruleName: string): ArmSecurityRule {
  const properties: Record<string, unknown> = {};
  for (const key of RULE_PROPERTY_NAMES) if (model[key] !== undefined) properties[key] = model[key];
  return {
    id: model.id as string | undefined,
    name: (model.name as string | undefined) ?? ruleName,
    etag: model.etag as string | undefined,
    properties: properties as unknown as SecurityRuleProperties,
  };
}

/** The NSG that a rule id belongs to. */
export function nsgOfRule(ruleId: string): string {
  return parentId(ruleId);
}

export { parseResourceId };
