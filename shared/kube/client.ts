// The only door to a cluster's Kubernetes API. A thin client on node:http(s) rather than
// @kubernetes/client-node: the latest client-node (2.x) is ESM-only and does not load on Node 20
// (its undici needs Node >= 22.19), and 1.4 costs ~0.4 s to import unbundled and ~1.8 MB bundled,
// for four requests NetGuard makes (see the kube report in the merge notes for the figures).
//
// Every request has a timeout and counts as transient when it expires; 429 and 5xx are retried with
// back-off whether or not Retry-After is sent; lists are paged with limit/continue.
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { parseNetworkPolicy, type ObservedPolicy } from './networkPolicy';

/** The Entra application of the AKS API servers (the "Azure Kubernetes Service AAD Server"). */
export const AKS_SERVER_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';
export const DEFAULT_KUBE_TIMEOUT_SECONDS = 30;
const NETWORK_POLICIES = '/apis/networking.k8s.io/v1';

export type KubeErrorKind = 'unauthorized' | 'forbidden' | 'not-found' | 'conflict' | 'unreachable' | 'timeout' | 'throttled' | 'server' | 'invalid' | 'refused-config';

/** A failed Kubernetes request (after retries), sorted into what an operator must know. */
export class KubeError extends Error {
  constructor(
    readonly kind: KubeErrorKind,
    message: string,
    readonly status?: number,
    readonly method?: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }

  /** Worth another try later (the sweep goes on either way). */
  get transient(): boolean {
    return this.kind === 'timeout' || this.kind === 'throttled' || this.kind === 'server' || this.kind === 'unreachable';
  }
}

export interface KubeClientOptions {
  /** API server base URL, from the kubeconfig. */
  server: string;
  /** PEM of the API server's CA (https only). */
  caPem?: string;
  /** Bearer token; never sent over plain http unless `plainHttpAllowed`. */
  token: string;
  /** Set only for a loopback stand-in with the fixed sandbox token. */
  plainHttpAllowed?: boolean;
  /** Timeout of one request (AKS_NETGUARD_ARM_TIMEOUT_SECONDS). Default 30 s. */
  timeoutMs?: number;
  /** Items per list page. Default 500. */
  pageSize?: number;
  retry?: { maxRetries?: number; baseDelayMs?: number; maxDelayMs?: number };
}

export interface KubeCallCounter {
  total: number;
  reads: number;
  writes: number;
}

export interface KubeNamespace {
  name: string;
  /** Active | Terminating */
  phase?: string;
  labels: Record<string, string>;
}

const namespaceSchema = z
  .object({
    metadata: z.object({ name: z.string().min(1), labels: z.record(z.string()).nullish() }).passthrough(),
    status: z.object({ phase: z.string().optional() }).passthrough().nullish(),
  })
  .passthrough();

const listSchema = z.object({
  items: z.array(z.unknown()).nullish(),
  metadata: z.object({ continue: z.string().optional() }).passthrough().nullish(),
});

const statusSchema = z.object({ message: z.string().optional(), reason: z.string().optional() }).passthrough();

const RETRYABLE_NET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export class KubeClient {
  readonly server: URL;
  readonly calls: KubeCallCounter = { total: 0, reads: 0, writes: 0 };
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly agent: http.Agent;
  /** Set by close(): requests still in flight give up instead of retrying. */
  private closed = false;

  constructor(private readonly options: KubeClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new KubeError('refused-config', `The API server address "${options.server}" is not a URL.`);
    }
    if (url.protocol === 'http:' && !options.plainHttpAllowed) {
      throw new KubeError('refused-config', `Refusing plain http to the API server ${url.host}: NetGuard never sends a real token unencrypted.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new KubeError('refused-config', `The API server address "${options.server}" is not http(s).`);
    this.server = url;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_KUBE_TIMEOUT_SECONDS * 1000;
    this.pageSize = options.pageSize ?? 500;
    this.maxRetries = options.retry?.maxRetries ?? 3;
    this.baseDelayMs = options.retry?.baseDelayMs ?? 1000;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: options.caPem }) : new http.Agent({ keepAlive: true });
  }

  /** Frees the kept-alive sockets. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  // ---- the requests NetGuard makes ----------------------------------------------------------------

  async listNamespaces(): Promise<KubeNamespace[]> {
    const items = await this.listAll('/api/v1/namespaces');
    return items.map((raw) => {
      const parsed = namespaceSchema.safeParse(raw);
      if (!parsed.success) throw new KubeError('invalid', `The API server answered a namespace NetGuard cannot read: ${parsed.error.issues[0].message}`);
      return { name: parsed.data.metadata.name, phase: parsed.data.status?.phase, labels: parsed.data.metadata.labels ?? {} };
    });
  }

  /** Every NetworkPolicy of the cluster (all namespaces); unreadable items are kept as such. */
  async listNetworkPolicies(): Promise<ObservedPolicy[]> {
    return (await this.listAll(`${NETWORK_POLICIES}/networkpolicies`)).map(parseNetworkPolicy);
  }

  async getNetworkPolicy(namespace: string, name: string): Promise<ObservedPolicy | undefined> {
    try {
      const { body } = await this.requestJson('GET', `${policiesOf(namespace)}/${encodeURIComponent(name)}`);
      return parseNetworkPolicy(body);
    } catch (err) {
      if (err instanceof KubeError && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  /** POST: fails with kind 'conflict' (409 AlreadyExists) when the name is taken. */
  async createNetworkPolicy(namespace: string, object: Record<string, unknown>): Promise<ObservedPolicy> {
    const { body } = await this.requestJson('POST', policiesOf(namespace), object);
    return parseNetworkPolicy(body);
  }

  /** PUT with metadata.resourceVersion: fails with kind 'conflict' (409) when it changed meanwhile. */
  async replaceNetworkPolicy(namespace: string, name: string, object: Record<string, unknown>): Promise<ObservedPolicy> {
    const { body } = await this.requestJson('PUT', `${policiesOf(namespace)}/${encodeURIComponent(name)}`, object);
    return parseNetworkPolicy(body);
  }

  // ---- plumbing -----------------------------------------------------------------------------------

  private async listAll(path: string): Promise<unknown[]> {
    const items: unknown[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ limit: String(this.pageSize) });
      if (token) query.set('continue', token);
      const { body } = await this.requestJson('GET', `${path}?${query.toString()}`);
      const page = listSchema.safeParse(body);
      if (!page.success) throw new KubeError('invalid', `GET ${path} answered something that is not a list.`, 200, 'GET', path);
      items.push(...(page.data.items ?? []));
      token = page.data.metadata?.continue || undefined;
    } while (token);
    return items;
  }

  private async requestJson(method: 'GET' | 'POST' | 'PUT', pathAndQuery: string, body?: unknown): Promise<{ body: unknown }> {
    const path = pathAndQuery.split('?')[0];
    for (let attempt = 0; ; attempt++) {
      let answer: RawAnswer;
      try {
        answer = await this.once(method, pathAndQuery, body);
      } catch (err) {
        const failure = networkFailure(err, method, path, this.server.host, this.timeoutMs);
        if (attempt < this.maxRetries && !this.closed) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw failure;
      }
      if (answer.status >= 200 && answer.status < 300) {
        try {
          return { body: answer.text ? JSON.parse(answer.text) : undefined };
        } catch {
          throw new KubeError('invalid', `${method} ${path} answered ${answer.status} with a body that is not JSON.`, answer.status, method, path);
        }
      }
      const retryable = answer.status === 429 || answer.status >= 500;
      if (retryable && attempt < this.maxRetries && !this.closed) {
        await sleep(this.backoff(attempt, retryAfterMs(answer.headers['retry-after'])));
        continue;
      }
      throw httpFailure(answer, method, path);
    }
  }

  private backoff(attempt: number, retryAfter?: number): number {
    if (retryAfter !== undefined) return Math.min(retryAfter, this.maxDelayMs);
    const exp = this.baseDelayMs * 2 ** attempt;
    return Math.min(this.maxDelayMs, exp / 2 + Math.random() * (exp / 2));
  }

  private once(method: string, pathAndQuery: string, body: unknown): Promise<RawAnswer> {
    const counters = this.calls;
    counters.total++;
    if (method === 'GET') counters.reads++;
    else counters.writes++;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const base = this.server.pathname.replace(/\/+$/, '');
    const transport = this.server.protocol === 'https:' ? https : http;
    return new Promise<RawAnswer>((resolve, reject) => {
      const req = transport.request(
        {
          protocol: this.server.protocol,
          hostname: this.server.hostname.replace(/^\[|\]$/g, ''),
          port: this.server.port || undefined,
          path: `${base}${pathAndQuery}`,
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            authorization: `Bearer ${this.options.token}`,
            'user-agent': 'aks-netguard',
            ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
        },
      );
      // One deadline for the whole exchange (connect, send, answer), not a socket idle timer.
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('request timed out'), { code: 'NETGUARD_TIMEOUT' })), this.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }
}

function policiesOf(namespace: string): string {
  return `${NETWORK_POLICIES}/namespaces/${encodeURIComponent(namespace)}/networkpolicies`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(v);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function networkFailure(err: unknown, method: string, path: string, host: string, timeoutMs: number): KubeError {
  const code = (err as { code?: string })?.code;
  if (code === 'NETGUARD_TIMEOUT') {
    return new KubeError('timeout', `The API server ${host} did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s.`, undefined, method, path);
  }
  if (code && RETRYABLE_NET_CODES.has(code)) {
    return new KubeError('unreachable', `NetGuard cannot reach the API server ${host} (${code}).`, undefined, method, path);
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code)) {
    return new KubeError('unreachable', `The API server ${host} did not present a certificate its kubeconfig's CA vouches for (${code}).`, undefined, method, path);
  }
  return new KubeError('unreachable', `The request ${method} ${path} to ${host} failed: ${(err as Error)?.message ?? String(err)}`, undefined, method, path);
}

function httpFailure(answer: RawAnswer, method: string, path: string): KubeError {
  let detail = '';
  try {
    const s = statusSchema.safeParse(JSON.parse(answer.text));
    if (s.success && s.data.message) detail = `: ${s.data.message}`;
  } catch {
    // not a Status object; the status code says enough
  }
  const what = `${method} ${path} answered ${answer.status}${detail}`;
  const kind: KubeErrorKind =
    answer.status === 401 ? 'unauthorized'
    : answer.status === 403 ? 'forbidden'
    : answer.status === 404 ? 'not-found'
    : answer.status === 409 ? 'conflict'
    : answer.status === 429 ? 'throttled'
    : answer.status >= 500 ? 'server'
    : 'invalid';
  return new KubeError(kind, what, answer.status, method, path);
}

/** AKS_NETGUARD_ARM_TIMEOUT_SECONDS as milliseconds; the settings may carry it, else the environment. */
export function kubeTimeoutMs(settings?: { armTimeoutSeconds?: number }, env: NodeJS.ProcessEnv = process.env): number {
  if (settings?.armTimeoutSeconds && settings.armTimeoutSeconds > 0) return settings.armTimeoutSeconds * 1000;
  const raw = Number(env.AKS_NETGUARD_ARM_TIMEOUT_SECONDS);
  return Number.isFinite(raw) && raw > 0 ? raw * 1000 : DEFAULT_KUBE_TIMEOUT_SECONDS * 1000;
}
