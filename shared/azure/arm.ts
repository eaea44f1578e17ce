// The only door to Azure Resource Manager. Real SDK clients (one set per subscription, cached) carry
// every request through their pipelines: credential, NetGuard's own retry policy (every try has a
// timeout; 429, 5xx, resets and expired tries are retried with capped back-off), user agent.
// Resources are read and written as raw ARM JSON so nothing unknown to an SDK model is ever dropped.
// A write whose answer was lost is settled here by re-reading, so callers hear the truth about it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { NetworkManagementClient, type SecurityRule as SdkSecurityRule } from '@azure/arm-network';
import { SubscriptionClient } from '@azure/arm-resources-subscriptions';
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicyName,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  isRestError,
  RestError,
  type HttpClient,
  type Pipeline,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { ConfigError } from '../config';
import type { SecurityRuleProperties } from './armTypes';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmSecurityRule, ArmVirtualNetwork } from './armTypes';
import { ArmError, RETRYABLE_CODES, VerificationError, classifyError, isRetryableStatus } from './errors';
import { lastSegment, parseResourceId, resourceGroupOf, subscriptionOf } from './ids';
import { OutOfScopeError, subscriptionScopePolicy } from './scope';
import type { Inventory } from './topology';

export const NETWORK_API_VERSION = '2026-01-01';
export const AKS_API_VERSION = '2026-01-01';
const SANDBOX_TOKEN = 'netguard-sandbox-token';
const callScope = new AsyncLocalStorage<ArmCallCounter>();
/** Set around one logical write: the retry policy notes whether any try's answer was lost or accepted. */
const writeScope = new AsyncLocalStorage<WriteWatch>();
/**
 * A raw ARM response body: JSON whose shape the caller knows (the resource type it asked for) and
 * reads field by field; the typed SDK operations are used where the SDK has them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ArmJson = any;

interface WriteWatch {
  /** A write try ended without a definite answer (timeout, reset, 5xx): Azure may have applied it. */
  lost: boolean;
  /** A write try was answered 2xx (a later poll may still fail). */
  accepted: boolean;
}

/** Default timeout of one try of one ARM request (AKS_NETGUARD_ARM_TIMEOUT_SECONDS). */
export const DEFAULT_ARM_TIMEOUT_MS = 30_000;

export interface ArmRetryOptions {
  /** Retries after the first try; default 3 (4 tries). 0 turns retrying off. */
  maxRetries?: number;
  /** First back-off when the answer names no Retry-After; doubles per retry, with jitter. Default 1000. */
  retryDelayInMs?: number;
  /** Cap of the exponential back-off. Default 16000. */
  maxRetryDelayInMs?: number;
  /** Cap of a Retry-After the service asks for (honoured up to this). Default 60000. */
  maxRetryAfterInMs?: number;
}

export interface ArmGatewayOptions {
  /** ARM base URL (AKS_NETGUARD_ARM_ENDPOINT). */
  endpoint: string;
  /** For https endpoints; default DefaultAzureCredential (created lazily, never for the sandbox). */
  credential?: TokenCredential;
  /** Retries of every ARM request (tests shorten the delays). */
  retryOptions?: ArmRetryOptions;
  /** Timeout of each try of each request, in ms (AKS_NETGUARD_ARM_TIMEOUT_SECONDS); default 30 s. */
  requestTimeoutMs?: number;
  /** Poll interval for long-running operations when the service gives no Retry-After. */
  pollIntervalMs?: number;
  /** How long a long-running write may stay in progress before NetGuard stops waiting; default 30 min. */
  operationDeadlineMs?: number;
  /** AKS_NETGUARD_SUBSCRIPTIONS: requests naming any other subscription are refused (scope.ts). */
  subscriptions?: readonly string[];
}

export interface ArmCallCounter {
  total: number;
  reads: number;
  writes: number;
}

export function isLoopbackHost(hostname: string): boolean {
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
  /**
   * The PUT's answer was lost but re-reading showed the change in place: there is no status URL, so
   * the update is followed by reading the resource's provisioningState.
   */
  followByReading?: boolean;
}

/** The part of a cluster a write changes, so a lost answer can be settled by re-reading. */
export interface WrittenChange {
  path: string[];
  value: unknown;
}

/** How many looks at a running update may fail in a row (each one already retried) before giving up. */
const MAX_FAILED_LOOKS = 3;

/** Most pages one list may take (10,000 pages is far more than any subscription holds of one type). */
const MAX_LIST_PAGES = 10_000;

/**
 * SDK clients kept per subscription, most recently used last. Bounded: a Function instance sweeps
 * subscription after subscription, and unbounded, the clients grew a worker's live heap by about
 * 13 MB per 100 subscriptions (npm run bench, 500 subscriptions). Well above the sweeps one
 * instance runs at once (host.json batchSize 16, each reading ahead a few).
 */
export const ARM_CLIENTS_KEPT = 64;

function cachedClient<T>(cache: Map<string, T>, subscriptionId: string, create: () => T): T {
  const key = subscriptionId.toLowerCase();
  let c = cache.get(key);
  if (c) cache.delete(key);
  else c = create();
  cache.set(key, c);
  if (cache.size > ARM_CLIENTS_KEPT) cache.delete(cache.keys().next().value as string);
  return c;
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
  private readonly retry: Required<ArmRetryOptions>;
  private readonly timeoutMs: number;
  private readonly operationDeadlineMs: number;

  constructor(private readonly options: ArmGatewayOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.kind = endpointKind(this.endpoint);
    this.credentialValue = options.credential;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    const r = options.retryOptions ?? {};
    this.retry = {
      maxRetries: Math.max(0, r.maxRetries ?? 3),
      retryDelayInMs: Math.max(0, r.retryDelayInMs ?? 1000),
      maxRetryDelayInMs: Math.max(0, r.maxRetryDelayInMs ?? 16_000),
      maxRetryAfterInMs: Math.max(0, r.maxRetryAfterInMs ?? 60_000),
    };
    this.timeoutMs = options.requestTimeoutMs && options.requestTimeoutMs > 0 ? options.requestTimeoutMs : DEFAULT_ARM_TIMEOUT_MS;
    this.operationDeadlineMs = options.operationDeadlineMs && options.operationDeadlineMs > 0 ? options.operationDeadlineMs : 30 * 60_000;
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
      userAgentOptions: { userAgentPrefix: 'aks-netguard' },
    };
  }

  /**
   * Sandbox: swap the TLS-only bearer policy for a fixed token; always: NetGuard's retry policy in
   * place of the SDK's, count calls, keep conditions off GETs.
   */
  private prepare(pipeline: Pipeline): void {
    // The SDK's policy never retries a 429 without Retry-After, honours any Retry-After uncapped and
    // has no per-try timeout: one policy of ours does all three (see retryingPolicy).
    pipeline.removePolicy({ name: 'defaultRetryPolicy' });
    pipeline.addPolicy(retryingPolicy(this.retry, this.timeoutMs), { phase: 'Retry' });
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
    // Links ARM answers with (nextLink, Azure-AsyncOperation, Location) are absolute URLs taken from a
    // response: one pointing at another host would be sent NetGuard's bearer token. Only the configured
    // endpoint's origin is ever contacted.
    const origin = new URL(this.endpoint).origin;
    pipeline.addPolicy(
      {
        name: 'netguardEndpointOrigin',
        sendRequest: (req, next) => {
          let target: string;
          try {
            target = new URL(req.url).origin;
          } catch {
            target = 'an unparsable URL';
          }
          if (target !== origin) {
            return Promise.reject(new OutOfScopeError(`NetGuard refused to send ${req.method} to ${target}: it talks only to its Azure Resource Manager endpoint ${origin} (a link in an answer pointed elsewhere).`));
          }
          return next(req);
        },
      },
      { afterPhase: 'Retry' },
    );
    const counter: PipelinePolicy = {
      name: 'netguardCallCounter',
      sendRequest: (req, next) => {
        for (const c of [this.calls, callScope.getStore()]) {
          if (!c) continue;
          c.total++;
          // ARM's POST list actions (listClusterUserCredential) read; they change nothing.
          if (req.method === 'GET' || (req.method === 'POST' && /\/list[A-Za-z]+$/.test(new URL(req.url).pathname))) c.reads++;
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
    return cachedClient(this.network, subscriptionId, () => {
      const c = new NetworkManagementClient(this.credential(), subscriptionId, this.clientOptions());
      this.prepare(c.pipeline);
      return c;
    });
  }

  aksClient(subscriptionId: string): ContainerServiceClient {
    return cachedClient(this.aks, subscriptionId, () => {
      const c = new ContainerServiceClient(this.credential(), subscriptionId, this.clientOptions());
      this.prepare(c.pipeline);
      return c;
    });
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
    method: 'GET' | 'PUT' | 'DELETE' | 'POST',
    pathOrUrl: string,
    apiVersion: string,
    pipeline: Pipeline,
    opts: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: ArmJson; headers: Record<string, string> }> {
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
    let body: ArmJson;
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
    // "Always end": a nextLink that comes back to a page already read, or pages without end, would keep
    // a sweep listing forever; the listing fails instead (an error finding names the subscription).
    const seen = new Set<string>();
    let next: string | undefined = path;
    while (next) {
      if (seen.has(next) || seen.size >= MAX_LIST_PAGES) {
        const why = seen.has(next) ? 'a nextLink led back to a page already read' : `it did not end after ${MAX_LIST_PAGES} pages`;
        throw new ArmError(undefined, 'InvalidNextLink', `NetGuard stopped listing ${path}: ${why}.`, 'GET', next);
      }
      seen.add(next);
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

  // ---- Kubernetes access (instance-metadata) ----------------------------------------------------

  /**
   * POST {cluster}/listClusterUserCredential: the kubeconfig text. NetGuard takes only the API server
   * address and CA from it; its credentials (kubelogin or local accounts) are never used.
   */
  async listClusterUserCredential(clusterId: string): Promise<string> {
    const r = await this.send('POST', `${clusterId}/listClusterUserCredential`, AKS_API_VERSION, this.pipelineFor(clusterId));
    const value = r.body?.kubeconfigs?.[0]?.value;
    if (typeof value !== 'string' || !value) throw new ArmError(r.status, 'NoKubeconfig', `listClusterUserCredential of ${lastSegment(clusterId)} returned no kubeconfig.`);
    return Buffer.from(value, 'base64').toString('utf8');
  }

  /** A token of NetGuard's own identity for another audience (the AKS server application); the sandbox token for the sandbox. */
  async accessToken(scope: string): Promise<string> {
    const t = await this.credential().getToken(scope);
    if (!t?.token) throw new Error(`No token for ${scope}.`);
    return t.token;
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Creates (If-None-Match: *) or repairs (If-Match: etag) a security rule through the SDK's typed
   * operation and waits for it; a stale condition surfaces as ArmError 412. When the answer was lost
   * (a try timed out, was reset or answered 5xx, or the PUT was accepted and a poll failed), the rule
   * is re-read: if it holds what NetGuard wrote, that is NetGuard's write and it is returned as such
   * (a retry of an applied conditional PUT answers 412, which is no one else's change).
   */
  async putSecurityRule(nsgId: string, ruleName: string, properties: SecurityRuleProperties, ifMatch?: string): Promise<ArmSecurityRule> {
    const client = this.networkClient(subscriptionOf(nsgId));
    const { provisioningState: _ignored, ...props } = properties;
    const conditional: Record<string, string> = ifMatch ? { 'If-Match': ifMatch } : { 'If-None-Match': '*' };
    const watch: WriteWatch = { lost: false, accepted: false };
    try {
      // The poller ends with a GET of the rule: that read-back is what the engine verifies.
      const written = await writeScope.run(watch, () =>
        client.securityRules.createOrUpdate(resourceGroupOf(nsgId), lastSegment(nsgId), ruleName, { name: ruleName, ...props } as unknown as SdkSecurityRule, {
          requestOptions: { headers: conditional },
          updateIntervalInMs: this.pollIntervalMs,
          // The SDK's poller would wait for an operation that never ends; this one ends (re-read below).
          abortSignal: AbortSignal.timeout(this.operationDeadlineMs),
        }),
      );
      return wireRule(written as unknown as Record<string, unknown>, ruleName);
    } catch (err) {
      if (watch.lost || watch.accepted) {
        const settled = await this.settleLostWrite(err, () => this.getSecurityRule(nsgId, ruleName), (rule) => holdsWritten(props as Record<string, unknown>, rule.properties as unknown as Record<string, unknown>));
        if (settled) return settled;
      }
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

  /**
   * After a write whose answer was lost: re-reads the resource; returns it when it holds what was
   * written (NetGuard's own write), otherwise undefined (the caller reports the original failure).
   * A re-read that fails leaves the outcome unknown: the original failure stands, named as such.
   */
  private async settleLostWrite<T>(original: unknown, reread: () => Promise<T | undefined>, holds: (resource: T) => boolean): Promise<T | undefined> {
    let now: T | undefined;
    try {
      now = await reread();
    } catch (err) {
      if (original instanceof Error) original.message = `${original.message} (the answer to NetGuard's write was lost and re-reading failed too: ${(err as Error).message})`;
      return undefined;
    }
    return now !== undefined && holds(now) ? now : undefined;
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
   * without waiting, so a function can end and verify later; waitForOperation() waits. When the PUT's
   * answer is lost and re-reading shows `change` in place, the update is NetGuard's: it is returned
   * to be followed by reading the cluster (there is no status URL to poll).
   */
  async startClusterUpdate(cluster: ArmManagedCluster, ifMatch: string | undefined, change?: WrittenChange): Promise<StartedOperation> {
    const headers: Record<string, string> = ifMatch ? { 'If-Match': ifMatch } : {};
    const watch: WriteWatch = { lost: false, accepted: false };
    let r: Awaited<ReturnType<ArmGateway['send']>>;
    try {
      r = await writeScope.run(watch, () => this.send('PUT', cluster.id, AKS_API_VERSION, this.pipelineFor(cluster.id), { body: cluster, headers }));
    } catch (err) {
      if (watch.lost && change) {
        const settled = await this.settleLostWrite(
          err,
          async () => (await this.getCluster(cluster.id)).cluster,
          (now) => sameWireValue(change.value, getPath(now, change.path)),
        );
        if (settled) return { resourceId: cluster.id, followByReading: true };
      }
      throw err;
    }
    const statusUrl = r.headers['azure-asyncoperation'] ?? r.headers['location'];
    const retryAfter = Number(r.headers['retry-after']);
    return { resourceId: cluster.id, statusUrl, retryAfterMs: this.cappedRetryAfter(retryAfter) };
  }

  /**
   * One look at a long-running operation: 'InProgress', 'Succeeded', or throws ArmError when it
   * ended Failed or Canceled. With no status URL the write completed when the PUT answered. When the
   * status poll itself fails (throttled, 5xx, timed out, gone), the resource is read instead: its
   * provisioningState says whether the update is still running — a failed poll is not a failed update.
   */
  async operationStatus(op: StartedOperation): Promise<{ status: 'InProgress' | 'Succeeded'; retryAfterMs?: number }> {
    if (op.followByReading) return this.resourceProgress(op.resourceId);
    if (!op.statusUrl) return { status: 'Succeeded' };
    let r: Awaited<ReturnType<ArmGateway['send']>>;
    try {
      r = await this.send('GET', op.statusUrl, AKS_API_VERSION, this.pipelineFor(op.resourceId));
    } catch {
      return this.resourceProgress(op.resourceId);
    }
    // Azure-AsyncOperation answers {status}; a Location URL answers 202 until done, then 200.
    const status = String(r.body?.status ?? (r.status === 200 ? 'Succeeded' : 'InProgress'));
    if (/^(failed|canceled|cancelled)$/i.test(status)) {
      throw new ArmError(undefined, r.body?.error?.code, `The update of ${op.resourceId} ended ${status}: ${r.body?.error?.message ?? 'no reason given'}`);
    }
    const ra = Number(r.headers['retry-after']);
    return { status: /^succeeded$/i.test(status) ? 'Succeeded' : 'InProgress', retryAfterMs: this.cappedRetryAfter(ra) };
  }

  /**
   * A Retry-After (seconds) on an update, honoured up to the same cap as on retries: an answer asking
   * for a day would otherwise make the CLI sleep a day, or the verify queue hide its message that long.
   */
  private cappedRetryAfter(seconds: number): number | undefined {
    if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
    return Math.min(seconds * 1000, this.retry.maxRetryAfterInMs);
  }

  /** Whether a resource's last write is still running, from its provisioningState. */
  private async resourceProgress(resourceId: string): Promise<{ status: 'InProgress' | 'Succeeded' }> {
    const isCluster = /\/providers\/Microsoft\.ContainerService\//i.test(resourceId);
    const { body } = await this.getJson<{ properties?: { provisioningState?: string } }>(resourceId, isCluster ? AKS_API_VERSION : NETWORK_API_VERSION);
    const state = String(body?.properties?.provisioningState ?? 'Succeeded');
    if (/^(failed|canceled|cancelled)$/i.test(state)) throw new ArmError(undefined, state, `The update of ${resourceId} ended ${state} (its provisioningState).`);
    return { status: /^succeeded$/i.test(state) ? 'Succeeded' : 'InProgress' };
  }

  /**
   * Polls a long-running operation to its end; onProgress is called on every poll (CLI progress).
   * A look that fails even after its retries is tolerated a few times in a row (the update runs on in
   * Azure); then the failure is reported, saying the update may still finish.
   */
  async waitForOperation(op: StartedOperation, onProgress?: (status: string) => void, timeoutMs = this.operationDeadlineMs): Promise<void> {
    if (!op.statusUrl && !op.followByReading) return;
    const deadline = Date.now() + timeoutMs;
    let delay = op.retryAfterMs ?? this.pollIntervalMs;
    let failedLooks = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, delay));
      let look: Awaited<ReturnType<ArmGateway['operationStatus']>>;
      try {
        look = await this.operationStatus(op);
        failedLooks = 0;
      } catch (err) {
        if (classifyError(err) !== 'retryable' || ++failedLooks >= MAX_FAILED_LOOKS) {
          if (err instanceof Error && classifyError(err) === 'retryable') {
            err.message = `NetGuard could not follow the update of ${op.resourceId} (it may still finish; the next run judges it again): ${err.message}`;
          }
          throw err;
        }
        onProgress?.('status unknown, looking again');
        delay = this.pollIntervalMs;
        continue;
      }
      onProgress?.(look.status);
      if (look.status === 'Succeeded') return;
      if (Date.now() > deadline) throw new ArmError(408, 'Timeout', `The update of ${op.resourceId} did not finish in time.`);
      delay = look.retryAfterMs ?? this.pollIntervalMs;
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

// ---- retries and timeouts -------------------------------------------------------------------

/** Milliseconds the answer asks to wait (retry-after-ms, x-ms-retry-after-ms, Retry-After seconds or date). */
function retryAfterOf(response: PipelineResponse | undefined): number | undefined {
  if (!response) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const v = Number(response.headers.get(name));
    if (response.headers.get(name) !== undefined && Number.isFinite(v) && v >= 0) return v;
  }
  const text = response.headers.get('retry-after');
  if (text === undefined || text.trim() === '') return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function pathOf(request: PipelineRequest): string {
  try {
    return new URL(request.url).pathname;
  } catch {
    return request.url;
  }
}

/**
 * Every try of every ARM request ends: it gets its own timeout, and an expired try counts as a
 * transient failure. 408, 429 and 5xx answers and network failures are retried (bounded), waiting
 * what Retry-After asks — capped, so a bad header cannot park a sweep — or, without one, an
 * exponential back-off with jitter. Writes report lost and accepted answers to the writeScope.
 */
function retryingPolicy(retry: Required<ArmRetryOptions>, timeoutMs: number): PipelinePolicy {
  return {
    name: 'netguardRetry',
    async sendRequest(request, next) {
      const callerSignal = request.abortSignal;
      const isWrite = request.method !== 'GET' && request.method !== 'HEAD';
      for (let attempt = 0; ; attempt++) {
        const expiry = new AbortController();
        const timer = setTimeout(() => expiry.abort(), timeoutMs);
        request.abortSignal = callerSignal ? AbortSignal.any([callerSignal as AbortSignal, expiry.signal]) : expiry.signal;
        let response: PipelineResponse | undefined;
        let error: unknown;
        try {
          response = await next(request);
        } catch (err) {
          error = err;
        } finally {
          clearTimeout(timer);
          request.abortSignal = callerSignal;
        }
        if (callerSignal?.aborted) throw error ?? new Error('The request was cancelled.');
        if (error !== undefined && expiry.signal.aborted) {
          error = new RestError(`ARM did not answer ${request.method} ${pathOf(request)} within ${timeoutMs / 1000} s.`, { code: 'ETIMEDOUT', request });
        }
        const transient =
          error !== undefined
            ? isRestError(error) && error.statusCode === undefined && RETRYABLE_CODES.has(String(error.code))
            : isRetryableStatus(response!.status);
        if (isWrite) {
          const watch = writeScope.getStore();
          if (watch && (error !== undefined || (response && response.status >= 500))) watch.lost = true;
          if (watch && response && response.status >= 200 && response.status < 300) watch.accepted = true;
        }
        if (!transient || attempt >= retry.maxRetries) {
          if (error !== undefined) {
            if (transient && attempt > 0 && error instanceof Error) error.message = `${error.message} (${attempt + 1} tries)`;
            throw error;
          }
          return response!;
        }
        const asked = retryAfterOf(response);
        const backoff = Math.min(retry.maxRetryDelayInMs, retry.retryDelayInMs * 2 ** attempt);
        const wait = asked !== undefined ? Math.min(asked, retry.maxRetryAfterInMs) : backoff / 2 + Math.random() * (backoff / 2);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
  };
}

// ---- comparing what was written with what is there -----------------------------------------

/** A rule's properties as read hold the properties as written (Azure may drop empty lists, vary case). */
export function holdsWritten(written: Record<string, unknown>, read: Record<string, unknown> | undefined): boolean {
  if (!read) return false;
  // Azure took the write and then failed to apply it: not a fix.
  if (/^(failed|canceled|cancelled)$/i.test(String(read.provisioningState ?? ''))) return false;
  for (const key of RULE_PROPERTY_NAMES) {
    if (key === 'provisioningState') continue;
    if (!sameWireValue(written[key], read[key])) return false;
  }
  return true;
}

function isEmptyValue(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
}

/** Equal as ARM values: strings without regard to case, lists as sets, absent = empty. */
export function sameWireValue(a: unknown, b: unknown): boolean {
  if (isEmptyValue(a) || isEmptyValue(b)) return isEmptyValue(a) && isEmptyValue(b);
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    const left = a.map((x) => JSON.stringify(canonical(x))).sort();
    const right = b.map((x) => JSON.stringify(canonical(x))).sort();
    return left.every((x, i) => x === right[i]);
  }
  if (typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].every((k) => sameWireValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** A value with strings lower-cased and object keys sorted, for set comparison of list entries. */
function canonical(v: unknown): unknown {
  if (typeof v === 'string') return v.toLowerCase();
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  }
  return v;
}

export function getPath(value: unknown, path: string[]): unknown {
  let node = value;
  for (const key of path) node = node === null || node === undefined ? undefined : (node as Record<string, unknown>)[key];
  return node;
}

export { parseResourceId };
