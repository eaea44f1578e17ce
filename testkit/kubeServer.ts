// A local, in-memory stand-in of a Kubernetes API server, for tests and the demo: namespaces and
// networking.k8s.io/v1 NetworkPolicies, with resourceVersion preconditions (409 Conflict), paging
// (limit/continue), bearer tokens, the API server's defaulting of policyTypes, Status error bodies,
// request recording and injectable faults. It answers what NetGuard asks; nothing else.
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';

export interface KubeSandboxOptions {
  /** Port on 127.0.0.1; default 0 (a free port). */
  port?: number;
  /** The bearer token accepted; default the ARM sandbox's fixed token. */
  token?: string;
  /** Most items one list page answers when the request asks for more (or for no limit). Default 500. */
  maxPageSize?: number;
  /** Serve https with this key and certificate (PEM), as a real API server does. */
  tls?: { key: string; cert: string };
}

export interface KubeRecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** 0 while being handled (or when the request was left hanging). */
  status: number;
}

export interface KubeInjectedFailure {
  method?: string;
  pathPattern?: RegExp;
  /** HTTP status to answer; ignored with `hang`. */
  status?: number;
  headers?: Record<string, string>;
  /** Never answer (until stop): a request that only a client timeout ends. */
  hang?: boolean;
  times?: number;
}

// Kubernetes objects are schemaless JSON to the stand-in: it reads and writes whichever fields a request has.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type KubeObject = Record<string, any>;

const NP_BASE = '/apis/networking.k8s.io/v1';
export const SANDBOX_KUBE_TOKEN = 'netguard-sandbox-token';

class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class KubeSandbox {
  readonly requests: KubeRecordedRequest[] = [];
  token: string;
  maxPageSize: number;
  /** When set, requests matching it answer 403 (Azure RBAC without the data actions). */
  forbid?: (request: KubeRecordedRequest) => boolean;

  private readonly server: http.Server | https.Server;
  private readonly scheme: 'http' | 'https';
  private readonly sockets = new Set<Socket>();
  private baseUrl = '';
  private stopped?: Promise<void>;
  private revision = 1000;
  private readonly namespaces = new Map<string, KubeObject>();
  /** "namespace/name" → policy object. */
  private readonly policies = new Map<string, KubeObject>();
  private readonly failures: KubeInjectedFailure[] = [];
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(options: KubeSandboxOptions) {
    this.token = options.token ?? SANDBOX_KUBE_TOKEN;
    this.maxPageSize = options.maxPageSize ?? 500;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.scheme = options.tls ? 'https' : 'http';
    this.server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler) : http.createServer(handler);
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: KubeSandboxOptions = {}): Promise<KubeSandbox> {
    const sandbox = new KubeSandbox(options);
    await new Promise<void>((resolve, reject) => {
      sandbox.server.once('error', reject);
      sandbox.server.listen(options.port ?? 0, '127.0.0.1', () => {
        sandbox.server.off('error', reject);
        resolve();
      });
    });
    sandbox.baseUrl = `${sandbox.scheme}://127.0.0.1:${(sandbox.server.address() as AddressInfo).port}`;
    return sandbox;
  }

  /** The API server URL a kubeconfig names. */
  get url(): string {
    return this.baseUrl;
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const res of this.hanging) res.destroy();
        for (const socket of this.sockets) socket.destroy();
        this.server.closeAllConnections();
      });
    }
    return this.stopped;
  }

  // ---- seeding and inspection (no HTTP, no recording) ----------------------------------------------

  addNamespace(name: string, labels: Record<string, string> = {}, phase = 'Active'): void {
    this.namespaces.set(name, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, uid: randomUUID(), resourceVersion: this.nextRevision(), labels: { 'kubernetes.io/metadata.name': name, ...labels }, creationTimestamp: new Date().toISOString() },
      spec: { finalizers: ['kubernetes'] },
      status: { phase },
    });
  }

  /** Stores a policy as the API server would (defaults applied, fresh resourceVersion); returns it. */
  putPolicy(namespace: string, policy: { metadata: { name: string; [k: string]: unknown }; spec?: KubeObject }): KubeObject {
    if (!this.namespaces.has(namespace)) this.addNamespace(namespace);
    const key = `${namespace}/${policy.metadata.name}`;
    const existing = this.policies.get(key);
    const stored = this.normalizePolicy(namespace, structuredClone(policy) as KubeObject, existing);
    this.policies.set(key, stored);
    return structuredClone(stored);
  }

  getPolicy(namespace: string, name: string): KubeObject | undefined {
    const p = this.policies.get(`${namespace}/${name}`);
    return p ? structuredClone(p) : undefined;
  }

  listPolicies(namespace?: string): KubeObject[] {
    return [...this.policies.values()].filter((p) => !namespace || p.metadata.namespace === namespace).map((p) => structuredClone(p));
  }

  failNext(failure: KubeInjectedFailure): void {
    this.failures.push({ ...failure });
  }

  writes(): KubeRecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  // ---- HTTP --------------------------------------------------------------------------------------

  private nextRevision(): string {
    return String(++this.revision);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://kube.invalid');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const record: KubeRecordedRequest = { method: (req.method ?? 'GET').toUpperCase(), path: url.pathname, query, headers, body: undefined, status: 0 };
    this.requests.push(record);
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let bodyError = false;
    if (text) {
      try {
        record.body = JSON.parse(text);
      } catch {
        bodyError = true;
      }
    }
    if (this.stopped) {
      res.destroy();
      return;
    }
    const injected = this.takeFailure(record);
    if (injected?.hang) {
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if (injected) {
      const code = injected.status ?? 500;
      this.send(res, record, code, statusBody(code, code === 429 ? 'TooManyRequests' : 'InternalError', `injected ${code}`), injected.headers ?? {});
      return;
    }
    try {
      const auth = headers.authorization ?? '';
      if (auth !== `Bearer ${this.token}`) throw new StatusError(401, 'Unauthorized', 'Unauthorized');
      if (this.forbid?.(record)) {
        throw new StatusError(403, 'Forbidden', `User "netguard" cannot ${record.method.toLowerCase()} resource at ${record.path}: Azure does not grant the data action.`);
      }
      if (bodyError) throw new StatusError(400, 'BadRequest', 'the body is not JSON');
      const answer = this.route(record);
      this.send(res, record, answer.status, answer.body, {});
    } catch (err) {
      if (err instanceof StatusError) this.send(res, record, err.code, statusBody(err.code, err.reason, err.message), {});
      else this.send(res, record, 500, statusBody(500, 'InternalError', `kube sandbox failure: ${(err as Error).message}`), {});
    }
  }

  private send(res: http.ServerResponse, record: KubeRecordedRequest, status: number, body: unknown, headers: Record<string, string>): void {
    record.status = status;
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  private takeFailure(record: KubeRecordedRequest): KubeInjectedFailure | undefined {
    const i = this.failures.findIndex((f) => (!f.method || f.method.toUpperCase() === record.method) && (!f.pathPattern || f.pathPattern.test(record.path)));
    if (i < 0) return undefined;
    const f = this.failures[i];
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) this.failures.splice(i, 1);
    return f;
  }

  private route(record: KubeRecordedRequest): { status: number; body: unknown } {
    const { method, path } = record;
    if (path === '/api/v1/namespaces') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return this.listPage(record, 'NamespaceList', 'v1', [...this.namespaces.values()]);
    }
    if (path === `${NP_BASE}/networkpolicies`) {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return this.listPage(record, 'NetworkPolicyList', 'networking.k8s.io/v1', this.sortedPolicies());
    }
    const m = /^\/apis\/networking\.k8s\.io\/v1\/namespaces\/([^/]+)\/networkpolicies(?:\/([^/]+))?$/.exec(path);
    if (!m) throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${method} ${path})`);
    const namespace = decodeURIComponent(m[1]);
    const name = m[2] ? decodeURIComponent(m[2]) : undefined;
    if (!this.namespaces.has(namespace)) throw new StatusError(404, 'NotFound', `namespaces "${namespace}" not found`);
    if (!name) {
      if (method === 'GET') return this.listPage(record, 'NetworkPolicyList', 'networking.k8s.io/v1', this.sortedPolicies().filter((p) => p.metadata.namespace === namespace));
      if (method === 'POST') return this.create(namespace, record.body);
      throw methodNotAllowed(method, path);
    }
    const key = `${namespace}/${name}`;
    if (method === 'GET') {
      const p = this.policies.get(key);
      if (!p) throw new StatusError(404, 'NotFound', `networkpolicies.networking.k8s.io "${name}" not found`);
      return { status: 200, body: p };
    }
    if (method === 'PUT') return this.replace(namespace, name, record.body);
    throw methodNotAllowed(method, path);
  }

  private create(namespace: string, body: unknown): { status: number; body: unknown } {
    const obj = requireObject(body);
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || !name) throw new StatusError(422, 'Invalid', 'metadata.name: Required value');
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw new StatusError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    if (obj.metadata.resourceVersion) throw new StatusError(422, 'Invalid', 'metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created');
    const key = `${namespace}/${name}`;
    if (this.policies.has(key)) throw new StatusError(409, 'AlreadyExists', `networkpolicies.networking.k8s.io "${name}" already exists`);
    const stored = this.normalizePolicy(namespace, obj, undefined);
    this.policies.set(key, stored);
    return { status: 201, body: stored };
  }

  private replace(namespace: string, name: string, body: unknown): { status: number; body: unknown } {
    const obj = requireObject(body);
    if (obj.metadata?.name !== name) throw new StatusError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    const key = `${namespace}/${name}`;
    const existing = this.policies.get(key);
    if (!existing) throw new StatusError(404, 'NotFound', `networkpolicies.networking.k8s.io "${name}" not found`);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== existing.metadata.resourceVersion) {
      throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on networkpolicies.networking.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    const stored = this.normalizePolicy(namespace, obj, existing);
    this.policies.set(key, stored);
    return { status: 200, body: stored };
  }

  /** What the API server stores: server-set metadata and defaulted policyTypes. */
  private normalizePolicy(namespace: string, obj: KubeObject, existing: KubeObject | undefined): KubeObject {
    const spec: KubeObject = { podSelector: {}, ...(obj.spec ?? {}) };
    if (!Array.isArray(spec.policyTypes) || spec.policyTypes.length === 0) {
      spec.policyTypes = Array.isArray(spec.egress) && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
    }
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        ...(obj.metadata ?? {}),
        namespace,
        uid: existing?.metadata.uid ?? randomUUID(),
        resourceVersion: this.nextRevision(),
        generation: (existing?.metadata.generation ?? 0) + 1,
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString(),
      },
      spec,
    };
  }

  private sortedPolicies(): KubeObject[] {
    return [...this.policies.values()].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  }

  /** limit/continue as the API server pages: the continue token is opaque to the client. */
  private listPage(record: KubeRecordedRequest, kind: string, apiVersion: string, items: KubeObject[]): { status: number; body: unknown } {
    const requested = Number(record.query.limit);
    const limit = Number.isInteger(requested) && requested > 0 ? Math.min(requested, this.maxPageSize) : this.maxPageSize;
    let offset = 0;
    if (record.query.continue) {
      const decoded = Number(Buffer.from(record.query.continue, 'base64url').toString('utf8').replace(/^offset:/, ''));
      if (!Number.isInteger(decoded) || decoded < 0) throw new StatusError(400, 'BadRequest', 'continue key is not valid');
      offset = decoded;
    }
    const page = items.slice(offset, offset + limit);
    const more = offset + limit < items.length;
    return {
      status: 200,
      body: {
        kind,
        apiVersion,
        metadata: { resourceVersion: String(this.revision), ...(more ? { continue: Buffer.from(`offset:${offset + limit}`).toString('base64url'), remainingItemCount: items.length - offset - limit } : {}) },
        items: page,
      },
    };
  }
}

function requireObject(body: unknown): KubeObject {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new StatusError(400, 'BadRequest', 'the body is not an object');
  return body as KubeObject;
}

function methodNotAllowed(method: string, path: string): StatusError {
  return new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${path})`);
}

function statusBody(code: number, reason: string, message: string): KubeObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
