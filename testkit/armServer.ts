// A local, in-memory stand-in of Azure Resource Manager ("the sandbox") for tests, the demo and the
// benchmark. It speaks the ARM wire format that the real SDK clients send and expect: resources are
// kept as raw ARM JSON (properties nested), keyed case-insensitively by id, with ETags, preconditions,
// long-running operations, paging, and injectable faults (error answers, stalls, resets, answers lost
// after the write was applied) and latency.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { ArmManagedCluster, ArmNetworkSecurityGroup, ArmVirtualNetwork } from '../shared/azure/armTypes';
import { idKey, parseResourceId } from '../shared/azure/ids';

export interface ArmSandboxOptions {
  /** Port on 127.0.0.1; default 0 (a free port). */
  port?: number;
  /** Most items one list page answers; more come through `nextLink`. Default 100. */
  pageSize?: number;
  /** How many times a managed cluster's operation status says InProgress before Succeeded. Default 1. */
  lroPolls?: number;
  /** Same for network writes (NSGs, rules, VNets, subnets). Default 0: the first poll says Succeeded. */
  networkLroPolls?: number;
  /** Delay before every response, in milliseconds. Default 0. */
  latencyMs?: number;
  /** Subscriptions the sandbox knows from the start. */
  subscriptions?: Array<string | { id: string; displayName?: string }>;
  /** Answer 401 to requests without an `Authorization: Bearer …` header, as ARM does. Default true. */
  requireAuth?: boolean;
  tenantId?: string;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path without the query string. */
  path: string;
  query: Record<string, string>;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when there was none (or it was not JSON). */
  body: unknown;
  /** Status answered; 0 while the request is still being handled, or when a fault (stall, reset) answered none. */
  status: number;
  /** True when the answer came from `failNext`. */
  injected?: boolean;
  /** How an injected fault answered instead of a status: held unanswered, or the connection reset. */
  fault?: 'stall' | 'reset';
  /** The request was carried out (a write took effect) before its answer was replaced by a fault. */
  applied?: boolean;
  /** True when the write was answered as a success but not applied (`ignoreWritesTo`). */
  ignoredWrite?: boolean;
}

export interface InjectedFailure {
  /** HTTP method to match (any when absent). */
  method?: string;
  /** Tested against the decoded path (no query); any path when absent. */
  pathPattern?: RegExp;
  /** Status answered (with `headers` and `body`); not needed with `fault`. */
  status?: number;
  headers?: Record<string, string>;
  /** Response body; default: an ARM error body fitting the status. */
  body?: unknown;
  /**
   * Instead of answering: 'stall' holds the request unanswered until the client gives up (or the
   * sandbox stops); 'reset' destroys the connection.
   */
  fault?: 'stall' | 'reset';
  /**
   * Carry the request out first, then replace its answer: a write that Azure applied but whose answer
   * was lost. (A matching GET is always carried out, so an operation polled through faults still runs.)
   */
  afterApplying?: boolean;
  /** How many matching requests fail; default 1. */
  times?: number;
}

export interface IgnoredWrite {
  method?: string;
  pathPattern: RegExp;
  /** How many matching writes are dropped; default 1 (Infinity: until `clearFaults`). */
  times?: number;
}

export type RequestFilter =
  | { method?: string; path?: RegExp | string; status?: number }
  | ((request: RecordedRequest) => boolean);

/** Told after every write or delete answered with success through HTTP (not for direct `put`/`remove`). */
export interface ResourceChange {
  kind: 'write' | 'delete';
  resourceId: string;
  /** As in Event Grid's data.operationName, e.g. "Microsoft.Network/networkSecurityGroups/securityRules/write". */
  operationName: string;
  /** False when the write was dropped by `ignoreWritesTo` (the caller was still told it succeeded). */
  applied: boolean;
}

export interface SandboxSubscription {
  id: string;
  displayName: string;
}

type TopKind = 'cluster' | 'nsg' | 'vnet';
type AnyTop = ArmManagedCluster | ArmNetworkSecurityGroup | ArmVirtualNetwork;
type WireObject = Record<string, unknown>;

const TOP_TYPES: Record<string, { kind: TopKind; wireType: string }> = {
  'microsoft.containerservice/managedclusters': { kind: 'cluster', wireType: 'Microsoft.ContainerService/ManagedClusters' },
  'microsoft.network/networksecuritygroups': { kind: 'nsg', wireType: 'Microsoft.Network/networkSecurityGroups' },
  'microsoft.network/virtualnetworks': { kind: 'vnet', wireType: 'Microsoft.Network/virtualNetworks' },
};

interface ChildType {
  parentType: string;
  /** The array under the parent's `properties` that holds the children. */
  arrayProp: 'agentPoolProfiles' | 'securityRules' | 'defaultSecurityRules' | 'subnets';
  wireType: string;
  writable: boolean;
}

const CHILD_TYPES: Record<string, ChildType> = {
  'microsoft.containerservice/managedclusters/agentpools': {
    parentType: 'microsoft.containerservice/managedclusters',
    arrayProp: 'agentPoolProfiles',
    wireType: 'Microsoft.ContainerService/managedClusters/agentPools',
    writable: true,
  },
  'microsoft.network/networksecuritygroups/securityrules': {
    parentType: 'microsoft.network/networksecuritygroups',
    arrayProp: 'securityRules',
    wireType: 'Microsoft.Network/networkSecurityGroups/securityRules',
    writable: true,
  },
  'microsoft.network/networksecuritygroups/defaultsecurityrules': {
    parentType: 'microsoft.network/networksecuritygroups',
    arrayProp: 'defaultSecurityRules',
    wireType: 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules',
    writable: false,
  },
  'microsoft.network/virtualnetworks/subnets': {
    parentType: 'microsoft.network/virtualnetworks',
    arrayProp: 'subnets',
    wireType: 'Microsoft.Network/virtualNetworks/subnets',
    writable: true,
  },
};

/** The six rules Azure puts in every NSG (names, priorities and texts as Azure publishes them). */
const DEFAULT_SECURITY_RULES: Array<{ name: string; description: string; source: string; destination: string; access: string; priority: number; direction: string }> = [
  { name: 'AllowVnetInBound', description: 'Allow inbound traffic from all VMs in VNET', source: 'VirtualNetwork', destination: 'VirtualNetwork', access: 'Allow', priority: 65000, direction: 'Inbound' },
  { name: 'AllowAzureLoadBalancerInBound', description: 'Allow inbound traffic from azure load balancer', source: 'AzureLoadBalancer', destination: '*', access: 'Allow', priority: 65001, direction: 'Inbound' },
  { name: 'DenyAllInBound', description: 'Deny all inbound traffic', source: '*', destination: '*', access: 'Deny', priority: 65500, direction: 'Inbound' },
  { name: 'AllowVnetOutBound', description: 'Allow outbound traffic from all VMs to all VMs in VNET', source: 'VirtualNetwork', destination: 'VirtualNetwork', access: 'Allow', priority: 65000, direction: 'Outbound' },
  { name: 'AllowInternetOutBound', description: 'Allow outbound traffic from all VMs to Internet', source: '*', destination: 'Internet', access: 'Allow', priority: 65001, direction: 'Outbound' },
  { name: 'DenyAllOutBound', description: 'Deny all outbound traffic', source: '*', destination: '*', access: 'Deny', priority: 65500, direction: 'Outbound' },
];

const RULE_PROTOCOLS = ['tcp', 'udp', 'icmp', 'esp', 'ah', '*'];

/** An ARM error answer; thrown inside handlers and turned into the response. */
class ArmHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface LongRunningOperation {
  id: string;
  pollsLeft: number;
  /** Key of the resource whose provisioningState turns Succeeded when the operation ends. */
  resourceKey?: string;
  startTime: string;
}

interface ParsedRoute {
  subscriptionId: string;
  resourceGroup?: string;
  namespace: string;
  /** type/name pairs after the namespace; the last one has name undefined for a collection. */
  pairs: Array<[string, string | undefined]>;
}

export class ArmSandbox {
  /** Bumped by writes that may change a VNet or subnet: the NSG → subnets index depends on those only. */
  private vnetGeneration = 0;
  private nsgSubnets?: { generation: number; byNsg: Map<string, string[]> };
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  latencyMs: number;
  pageSize: number;
  lroPolls: number;
  networkLroPolls: number;
  requireAuth: boolean;
  readonly tenantId: string;

  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private baseUrl = '';
  private stopped: Promise<void> | undefined;
  private readonly subscriptions = new Map<string, SandboxSubscription>();
  /** Top-level resources (clusters, NSGs, VNets) by lower-cased id; children live inside them. */
  private resources = new Map<string, AnyTop>();
  private readonly operations = new Map<string, LongRunningOperation>();
  /** Resource key → the operation that will mark it Succeeded. */
  private pendingOperations = new Map<string, string>();
  private readonly failures: InjectedFailure[] = [];
  private readonly ignoredWrites: IgnoredWrite[] = [];
  private readonly changeListeners: Array<(change: ResourceChange) => void> = [];
  /** Latency waits in progress; `stop` ends them at once so no timer outlives the sandbox. */
  private readonly delays = new Set<() => void>();

  private constructor(options: ArmSandboxOptions) {
    this.latencyMs = options.latencyMs ?? 0;
    this.pageSize = options.pageSize ?? 100;
    this.lroPolls = options.lroPolls ?? 1;
    this.networkLroPolls = options.networkLroPolls ?? 0;
    this.requireAuth = options.requireAuth ?? true;
    this.tenantId = options.tenantId ?? '72f988bf-0000-0000-0000-000000000000';
    for (const s of options.subscriptions ?? []) {
      if (typeof s === 'string') this.addSubscription(s);
      else this.addSubscription(s.id, s.displayName);
    }
    this.server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: ArmSandboxOptions = {}): Promise<ArmSandbox> {
    const sandbox = new ArmSandbox(options);
    await new Promise<void>((resolve, reject) => {
      sandbox.server.once('error', reject);
      sandbox.server.listen(options.port ?? 0, '127.0.0.1', () => {
        sandbox.server.off('error', reject);
        resolve();
      });
    });
    const address = sandbox.server.address() as AddressInfo;
    sandbox.baseUrl = `http://127.0.0.1:${address.port}`;
    return sandbox;
  }

  /** e.g. "http://127.0.0.1:53123" — the value for the SDK clients' `endpoint` option. */
  get endpoint(): string {
    return this.baseUrl;
  }

  /** Closes the server and every open socket (keep-alive ones included). Safe to call twice. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const finish of [...this.delays]) finish();
        for (const socket of this.sockets) socket.destroy();
        this.server.closeAllConnections();
      });
    }
    return this.stopped;
  }

  // ---------------------------------------------------------------- faults and observation

  /** Queues a failure answered to the next matching request(s), before any routing or state change. */
  failNext(failure: InjectedFailure): void {
    if (failure.status === undefined && failure.fault === undefined) throw new Error('ArmSandbox.failNext: give a status or a fault');
    this.failures.push({ ...failure, times: failure.times ?? 1 });
  }

  /** The next matching write(s) are answered as successes but change nothing: "a write that did not take". */
  ignoreWritesTo(pathPattern: RegExp, options: { method?: string; times?: number } = {}): void {
    this.ignoredWrites.push({ pathPattern, method: options.method, times: options.times ?? 1 });
  }

  /** Forgets every queued failure and ignored write. */
  clearFaults(): void {
    this.failures.length = 0;
    this.ignoredWrites.length = 0;
  }

  resetRequests(): void {
    this.requests.length = 0;
  }

  countRequests(filter?: RequestFilter): number {
    return this.findRequests(filter).length;
  }

  findRequests(filter?: RequestFilter): RecordedRequest[] {
    if (!filter) return [...this.requests];
    if (typeof filter === 'function') return this.requests.filter(filter);
    return this.requests.filter(
      (r) =>
        (!filter.method || r.method.toUpperCase() === filter.method.toUpperCase()) &&
        (filter.path === undefined ||
          (typeof filter.path === 'string' ? r.path.toLowerCase() === filter.path.toLowerCase() : filter.path.test(r.path))) &&
        (filter.status === undefined || r.status === filter.status),
    );
  }

  /** Calls the listener after each successful write/delete through HTTP; returns a function that unsubscribes. */
  onChange(listener: (change: ResourceChange) => void): () => void {
    this.changeListeners.push(listener);
    return () => {
      const i = this.changeListeners.indexOf(listener);
      if (i >= 0) this.changeListeners.splice(i, 1);
    };
  }

  // ---------------------------------------------------------------- direct state access (tests)

  addSubscription(id: string, displayName?: string): SandboxSubscription {
    const existing = this.subscriptions.get(idKey(id));
    const sub = { id: existing?.id ?? id, displayName: displayName ?? existing?.displayName ?? `Sandbox subscription ${id}` };
    this.subscriptions.set(idKey(id), sub);
    return { ...sub };
  }

  listSubscriptions(): SandboxSubscription[] {
    return [...this.subscriptions.values()].map((s) => ({ ...s }));
  }

  /**
   * Stores a resource as given (deep-copied), by its `id`: a cluster, NSG or VNet, or a security rule,
   * subnet or agent pool (inserted into its parent, which must exist). Fills in what ARM would (type,
   * child ids, default rules, a fresh ETag unless one is given). Its subscription becomes known.
   * Returns what a GET would now answer.
   */
  put<T extends { id: string }>(resource: T): T {
    this.bump(resource.id);
    const id = resource.id;
    const parsed = parseResourceId(id);
    if (!this.subscriptions.has(idKey(parsed.subscriptionId))) this.addSubscription(parsed.subscriptionId);
    const type = typeKeyOf(id);
    const body = structuredClone(resource) as unknown as WireObject;
    const top = TOP_TYPES[type];
    if (top) {
      const existing = this.resources.get(idKey(id));
      const stored = this.normalizeTop(top.kind, existing?.id ?? id, body, existing, readEtag(body));
      this.resources.set(idKey(id), stored);
      return this.get(id) as unknown as T;
    }
    const child = CHILD_TYPES[type];
    if (child) {
      const parent = this.resources.get(idKey(parentOf(id)));
      if (!parent) throw new Error(`ArmSandbox.put: the parent of ${id} is not in the sandbox; put it first`);
      this.writeChild(parent, child, id, body, readEtag(body));
      return this.get(id) as unknown as T;
    }
    throw new Error(`ArmSandbox.put: the sandbox does not hold resources of type ${type} (${id})`);
  }

  /** What a GET of this id would answer (a deep copy), or undefined. */
  get<T = WireObject>(id: string): T | undefined {
    const type = typeKeyOf(id);
    if (TOP_TYPES[type]) {
      const stored = this.resources.get(idKey(id));
      return stored ? (this.viewTop(stored) as T) : undefined;
    }
    const child = CHILD_TYPES[type];
    if (child) {
      const parent = this.resources.get(idKey(parentOf(id)));
      if (!parent) return undefined;
      const found = findChild(parent, child, lastOf(id));
      return found ? (this.viewChild(parent, child, found) as T) : undefined;
    }
    return undefined;
  }

  /** Removes a resource (children go with their parent). True when it existed. */
  remove(id: string): boolean {
    this.bump(id);
    const type = typeKeyOf(id);
    if (TOP_TYPES[type]) return this.resources.delete(idKey(id));
    const child = CHILD_TYPES[type];
    if (!child) return false;
    const parent = this.resources.get(idKey(parentOf(id)));
    if (!parent) return false;
    return this.deleteChild(parent, child, lastOf(id));
  }

  /**
   * Every stored resource as a GET would answer it, in insertion order. `typeFilter` is an ARM type
   * such as "Microsoft.Network/networkSecurityGroups" or "Microsoft.Network/virtualNetworks/subnets"
   * (case-insensitive); child types list the children of every parent.
   */
  list<T = WireObject>(typeFilter?: string): T[] {
    const all = [...this.resources.values()];
    if (!typeFilter) return all.map((r) => this.viewTop(r) as T);
    const wanted = typeFilter.toLowerCase();
    if (TOP_TYPES[wanted]) return all.filter((r) => typeKeyOf(r.id) === wanted).map((r) => this.viewTop(r) as T);
    const child = CHILD_TYPES[wanted];
    if (!child) return [];
    return all
      .filter((r) => typeKeyOf(r.id) === child.parentType)
      .flatMap((parent) => childArray(parent, child).map((c) => this.viewChild(parent, child, c) as T));
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const query: Record<string, string> = {};
    url.searchParams.forEach((value, name) => {
      query[name] = value;
    });
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const record: RecordedRequest = { method: (req.method ?? 'GET').toUpperCase(), path, query, headers, body: undefined, status: 0 };
    this.requests.push(record);

    let rawBody: string;
    try {
      rawBody = await readBody(req);
    } catch {
      return; // the client went away
    }
    let bodyError = false;
    if (rawBody.length > 0) {
      try {
        record.body = JSON.parse(rawBody);
      } catch {
        bodyError = true;
      }
    }

    if (this.latencyMs > 0) await this.delay(this.latencyMs);
    if (this.stopped) {
      res.destroy();
      return;
    }

    const injected = this.takeFailure(record);
    // A GET changes nothing but lets a running operation progress, as it would in Azure whether or
    // not its answer arrives; a write is carried out only when asked (a lost answer).
    const carryOut = !injected || injected.afterApplying || record.method === 'GET';
    const answer = carryOut ? this.answer(record, url.pathname, headers, bodyError) : undefined;
    if (injected) {
      record.injected = true;
      if (answer && record.method !== 'GET' && answer.status < 300) record.applied = true;
      this.answerFault(req, res, record, injected);
      return;
    }
    this.send(res, record, answer!.status, answer!.body, answer!.headers ?? {});
  }

  /** What the sandbox answers to a request (errors included), with its effect on the state. */
  private answer(record: RecordedRequest, rawPathname: string, headers: Record<string, string>, bodyError: boolean): Answer {
    try {
      if (this.requireAuth && !/^bearer\s+\S+/i.test(headers.authorization ?? '')) {
        throw new ArmHttpError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
      }
      if (bodyError) throw new ArmHttpError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: the body is not JSON.');
      return this.route(record, rawPathname);
    } catch (err) {
      if (err instanceof ArmHttpError) return { status: err.status, body: { error: { code: err.code, message: err.message } } };
      const message = err instanceof Error ? err.message : String(err);
      return { status: 500, body: { error: { code: 'InternalServerError', message: `ARM sandbox failure: ${message}` } } };
    }
  }

  private answerFault(req: http.IncomingMessage, res: http.ServerResponse, record: RecordedRequest, injected: InjectedFailure): void {
    if (injected.fault === 'stall') {
      // Never answered: the client's timeout (or stop()) ends it.
      record.fault = 'stall';
      return;
    }
    if (injected.fault === 'reset') {
      record.fault = 'reset';
      req.socket.destroy();
      return;
    }
    const status = injected.status!;
    const body = injected.body !== undefined ? injected.body : defaultErrorBody(status, record);
    this.send(res, record, status, body, injected.headers ?? {});
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.delays.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.delays.add(finish);
    });
  }

  private send(res: http.ServerResponse, record: RecordedRequest, status: number, body: unknown, headers: Record<string, string>): void {
    record.status = status;
    if (res.destroyed || res.writableEnded) return;
    const text = body === undefined ? '' : JSON.stringify(body);
    const out: Record<string, string> = {
      'x-ms-request-id': randomUUID(),
      'x-ms-correlation-request-id': record.headers['x-ms-correlation-request-id'] ?? randomUUID(),
      ...headers,
    };
    if (text) out['content-type'] = 'application/json; charset=utf-8';
    out['content-length'] = String(Buffer.byteLength(text));
    res.writeHead(status, out);
    res.end(text);
  }

  private takeFailure(record: RecordedRequest): InjectedFailure | undefined {
    const i = this.failures.findIndex((f) => matches(f.method, f.pathPattern, record));
    if (i < 0) return undefined;
    const failure = this.failures[i];
    failure.times = (failure.times ?? 1) - 1;
    if (failure.times <= 0) this.failures.splice(i, 1);
    return failure;
  }

  private takeIgnoredWrite(record: RecordedRequest): boolean {
    const i = this.ignoredWrites.findIndex((w) => matches(w.method, w.pathPattern, record));
    if (i < 0) return false;
    const w = this.ignoredWrites[i];
    w.times = (w.times ?? 1) - 1;
    if (w.times <= 0) this.ignoredWrites.splice(i, 1);
    return true;
  }

  private route(record: RecordedRequest, rawPathname: string): Answer {
    const segments = record.path.split('/').filter((s) => s.length > 0);
    const method = record.method;
    if (segments.length === 0 || segments[0].toLowerCase() !== 'subscriptions') throw unknownRoute(method, record.path);
    if (segments.length === 1) {
      requireMethod(method, ['GET'], record.path);
      return this.listPage(record, rawPathname, this.listSubscriptions().map((s) => this.subscriptionView(s)));
    }
    const subscription = this.subscriptions.get(idKey(segments[1]));
    if (!subscription) {
      throw new ArmHttpError(404, 'SubscriptionNotFound', `The subscription '${segments[1]}' could not be found (the sandbox knows: ${this.listSubscriptions().map((s) => s.id).join(', ') || 'none'}; use addSubscription).`);
    }
    if (segments.length === 2) {
      requireMethod(method, ['GET'], record.path);
      return { status: 200, body: this.subscriptionView(subscription) };
    }
    const route = parseRoute(segments);
    if (!route) throw unknownRoute(method, record.path);

    const lower = route.pairs.map(([t]) => t.toLowerCase());
    if (!route.resourceGroup && lower[0] === 'locations' && route.pairs.length === 2 && (lower[1] === 'operations' || lower[1] === 'operationresults') && route.pairs[1][1]) {
      requireMethod(method, ['GET'], record.path);
      return this.operationStatus(route.pairs[1][1]);
    }

    if (method === 'POST' && route.resourceGroup && route.pairs.length === 2 && lower[1] === 'listclusterusercredential' && route.pairs[0][1]) {
      return this.clusterUserCredential(idFromRoute({ ...route, pairs: route.pairs.slice(0, 1) }));
    }

    const typeKey = [route.namespace, ...route.pairs.map(([t]) => t)].join('/').toLowerCase();
    const isCollection = route.pairs[route.pairs.length - 1][1] === undefined;
    const top = TOP_TYPES[typeKey];
    const child = CHILD_TYPES[typeKey];
    if (!top && !child) throw unknownRoute(method, record.path);

    if (isCollection) {
      requireMethod(method, ['GET'], record.path);
      if (top) {
        if (route.pairs.length !== 1) throw unknownRoute(method, record.path);
        // Keys are lower-cased ids: the subscription prefix skips other subscriptions without parsing
        // ids, and only the page asked for is copied out (lists stay cheap in a 100,000-resource fleet).
        const prefix = `/subscriptions/${idKey(route.subscriptionId)}/`;
        const items: AnyTop[] = [];
        for (const [key, r] of this.resources) {
          if (!key.startsWith(prefix) || typeKeyOf(r.id) !== typeKey) continue;
          const p = parseResourceId(r.id);
          if (!route.resourceGroup || idKey(p.resourceGroup ?? '') === idKey(route.resourceGroup)) items.push(r);
        }
        return this.listPage(record, rawPathname, items, (r) => this.viewTop(r as AnyTop));
      }
      const parent = this.requireParent(route, record.path);
      return this.listPage(record, rawPathname, childArray(parent, child!).map((c) => this.viewChild(parent, child!, c)));
    }

    if (!route.resourceGroup) throw unknownRoute(method, record.path);
    const urlId = idFromRoute(route);
    if (top) {
      if (route.pairs.length !== 1) throw unknownRoute(method, record.path);
      if (method === 'GET') return this.getTop(urlId);
      if (method === 'PUT') return this.applyWrite(record, urlId, () => this.putTop(record, top.kind, urlId));
      if (method === 'DELETE') return this.applyWrite(record, urlId, () => this.deleteTop(record, urlId));
      throw methodNotAllowed(method, record.path);
    }
    const parent = this.requireParent(route, record.path);
    const name = route.pairs[route.pairs.length - 1][1]!;
    if (method === 'GET') {
      const found = findChild(parent, child!, name);
      if (!found) throw notFound(urlId, child!.wireType);
      return withEtagHeader(child!, { status: 200, body: this.viewChild(parent, child!, found) });
    }
    if (!child!.writable) throw methodNotAllowed(method, record.path);
    if (method === 'PUT') return this.applyWrite(record, urlId, () => this.putChild(record, parent, child!, urlId));
    if (method === 'DELETE') return this.applyWrite(record, urlId, () => this.deleteChildViaHttp(record, parent, child!, name, urlId));
    throw methodNotAllowed(method, record.path);
  }

  // ---------------------------------------------------------------- Kubernetes API servers

  /** Cluster id (lower-cased) → the API server its kubeconfig names (the Kubernetes stand-in). */
  private readonly kubeServers = new Map<string, { server: string; caPem?: string }>();

  /** Makes listClusterUserCredential of the cluster answer a kubeconfig naming this API server. */
  setKubeApiServer(clusterId: string, server: string, caPem?: string): void {
    this.kubeServers.set(idKey(clusterId), { server, caPem });
  }

  /** As AKS answers: a kubeconfig, base64 in kubeconfigs[0].value, with kubelogin as its user. */
  private clusterUserCredential(clusterId: string): Answer {
    const cluster = this.resources.get(idKey(clusterId));
    if (!cluster || typeKeyOf(cluster.id) !== 'microsoft.containerservice/managedclusters') throw notFound(clusterId, 'Microsoft.ContainerService/managedClusters');
    const name = cluster.name;
    const target = this.kubeServers.get(idKey(clusterId)) ?? { server: `https://${name}-dns.hcp.${cluster.location ?? 'eastus'}.azmk8s.io:443` };
    const ca = target.caPem ? `\n    certificate-authority-data: ${Buffer.from(target.caPem).toString('base64')}` : '';
    const kubeconfig = [
      'apiVersion: v1',
      'clusters:',
      `- cluster:${ca}`,
      `    server: ${target.server}`,
      `  name: ${name}`,
      'contexts:',
      '- context:',
      `    cluster: ${name}`,
      `    user: clusterUser_${name}`,
      `  name: ${name}`,
      `current-context: ${name}`,
      'kind: Config',
      'preferences: {}',
      'users:',
      `- name: clusterUser_${name}`,
      '  user:',
      '    exec:',
      '      apiVersion: client.authentication.k8s.io/v1beta1',
      '      command: kubelogin',
      '      args:',
      '      - get-token',
      '      - --server-id',
      '      - 6dae42f8-4368-4678-94ff-3960e28e3630',
      '',
    ].join('\n');
    return { status: 200, body: { kubeconfigs: [{ name: 'clusterUser', value: Buffer.from(kubeconfig).toString('base64') }] } };
  }

  /** Runs a write; when it is to be ignored, answers as it would but puts the old state back. */
  private applyWrite(record: RecordedRequest, resourceId: string, write: () => Answer): Answer {
    const ignore = this.takeIgnoredWrite(record);
    const saved = ignore ? { resources: structuredClone(this.resources), pending: new Map(this.pendingOperations) } : undefined;
    const answer = write();
    if (saved) {
      this.resources = saved.resources;
      this.pendingOperations = saved.pending;
      record.ignoredWrite = true;
    }
    if (answer.status < 300 && answer.changed !== false) {
      const kind = record.method === 'DELETE' ? 'delete' : 'write';
      const change: ResourceChange = {
        kind,
        resourceId: answer.resourceId ?? resourceId,
        operationName: `${operationTypeOf(resourceId)}/${kind}`,
        applied: !ignore,
      };
      for (const listener of [...this.changeListeners]) {
        try {
          listener(change);
        } catch {
          // a listener's failure must not turn into the caller's HTTP error
        }
      }
    }
    return answer;
  }

  private requireParent(route: ParsedRoute, path: string): AnyTop {
    const parentRoute: ParsedRoute = { ...route, pairs: route.pairs.slice(0, -1) };
    if (!route.resourceGroup || parentRoute.pairs.some(([, n]) => n === undefined)) throw unknownRoute('GET', path);
    const parentId = idFromRoute(parentRoute);
    const parent = this.resources.get(idKey(parentId));
    if (!parent) throw notFound(parentId, TOP_TYPES[typeKeyOf(parentId)]?.wireType ?? 'resource', 'ParentResourceNotFound');
    return parent;
  }

  private getTop(id: string): Answer {
    const stored = this.resources.get(idKey(id));
    if (!stored) throw notFound(id, TOP_TYPES[typeKeyOf(id)].wireType);
    // An operation runs on its own in Azure: a look at its resource counts as a look at it, so a
    // client that cannot poll (a lost status URL, a throttled poll) still sees the update finish.
    const pending = this.pendingOperations.get(idKey(id));
    if (pending) this.operationStatus(pending);
    const body = this.viewTop(stored);
    return { status: 200, body, headers: etagHeaderOf(stored) };
  }

  private putTop(record: RecordedRequest, kind: TopKind, urlId: string): Answer {
    this.bump(urlId);
    const body = requireObjectBody(record.body);
    const existing = this.resources.get(idKey(urlId));
    checkPreconditions(record, existing ? etagOfTop(existing) : undefined, !!existing, urlId);
    if (!existing && typeof body.location !== 'string') {
      throw new ArmHttpError(400, 'LocationRequired', `The location property is required for creating ${urlId}.`);
    }
    if (kind === 'nsg') validateRules(asArray((body.properties as WireObject | undefined)?.securityRules));
    const id = existing?.id ?? urlId;
    const stored = this.normalizeTop(kind, id, body, existing, undefined);
    const operation = this.startOperation(stored, kind);
    this.resources.set(idKey(id), stored);
    const view = this.viewTop(stored);
    (view.properties as WireObject).provisioningState = existing ? 'Updating' : 'Creating';
    return { status: existing ? 200 : 201, body: view, headers: { ...etagHeaderOf(stored), 'Azure-AsyncOperation': operation } };
  }

  private deleteTop(record: RecordedRequest, urlId: string): Answer {
    this.bump(urlId);
    const existing = this.resources.get(idKey(urlId));
    checkPreconditions(record, existing ? etagOfTop(existing) : undefined, !!existing, urlId);
    const existed = this.resources.delete(idKey(urlId));
    this.pendingOperations.delete(idKey(urlId));
    return existed ? { status: 200, body: undefined } : { status: 204, body: undefined, changed: false };
  }

  private putChild(record: RecordedRequest, parent: AnyTop, child: ChildType, urlId: string): Answer {
    const body = requireObjectBody(record.body);
    const name = lastOf(urlId);
    const existing = findChild(parent, child, name);
    checkPreconditions(record, existing ? etagOfChild(child, existing) : undefined, !!existing, urlId);
    if (child.arrayProp === 'securityRules') {
      const others = asArray((parent as ArmNetworkSecurityGroup).properties.securityRules).filter((r) => idKey(String(r.name)) !== idKey(name));
      validateRules([...others, { ...body, name }]);
    }
    this.writeChild(parent, child, existing ? String((existing as WireObject).id ?? urlId) : urlId, body, undefined);
    const kind = typeKeyOf(parent.id) === 'microsoft.containerservice/managedclusters' ? 'cluster' : 'network';
    const operation = this.startOperation(parent, kind === 'cluster' ? 'cluster' : 'nsg');
    const written = findChild(parent, child, name)!;
    const view = this.viewChild(parent, child, written);
    const props = view.properties as WireObject | undefined;
    if (props) props.provisioningState = existing ? 'Updating' : 'Creating';
    return withEtagHeader(child, { status: existing ? 200 : 201, body: view, headers: { 'Azure-AsyncOperation': operation } });
  }

  private deleteChildViaHttp(record: RecordedRequest, parent: AnyTop, child: ChildType, name: string, urlId: string): Answer {
    const existing = findChild(parent, child, name);
    checkPreconditions(record, existing ? etagOfChild(child, existing) : undefined, !!existing, urlId);
    const existed = this.deleteChild(parent, child, name);
    return existed ? { status: 200, body: undefined } : { status: 204, body: undefined, changed: false };
  }

  /** Registers a long-running operation for a write and returns its absolute status URL. */
  private startOperation(resource: AnyTop, kind: TopKind): string {
    const isCluster = kind === 'cluster';
    const id = randomUUID();
    const pollsLeft = isCluster ? this.lroPolls : this.networkLroPolls;
    const key = idKey(resource.id);
    this.operations.set(id, { id, pollsLeft, resourceKey: key, startTime: new Date().toISOString() });
    if (pollsLeft > 0) {
      this.pendingOperations.set(key, id);
      setProvisioningState(resource, 'Updating');
    } else {
      this.pendingOperations.delete(key);
      setProvisioningState(resource, 'Succeeded');
    }
    const { subscriptionId } = parseResourceId(resource.id);
    const namespace = isCluster ? 'Microsoft.ContainerService' : 'Microsoft.Network';
    const location = encodeURIComponent(resource.location ?? 'local');
    return `${this.baseUrl}/subscriptions/${subscriptionId}/providers/${namespace}/locations/${location}/operations/${id}?api-version=2026-01-01`;
  }

  private operationStatus(operationId: string): Answer {
    const operation = this.operations.get(operationId.toLowerCase()) ?? this.operations.get(operationId);
    if (!operation) throw new ArmHttpError(404, 'NotFound', `Operation ${operationId} was not found.`);
    if (operation.pollsLeft > 0) {
      operation.pollsLeft -= 1;
      return { status: 200, body: { id: operationId, name: operationId, status: 'InProgress', startTime: operation.startTime } };
    }
    if (operation.resourceKey && this.pendingOperations.get(operation.resourceKey) === operation.id) {
      this.pendingOperations.delete(operation.resourceKey);
      const resource = this.resources.get(operation.resourceKey);
      if (resource) setProvisioningState(resource, 'Succeeded');
    }
    return {
      status: 200,
      body: { id: operationId, name: operationId, status: 'Succeeded', startTime: operation.startTime, endTime: new Date().toISOString() },
    };
  }

  private listPage(record: RecordedRequest, rawPathname: string, items: unknown[], view: (item: unknown) => unknown = (item) => item): Answer {
    const skip = Math.max(0, Number.parseInt(record.query.$skiptoken ?? record.query.$skipToken ?? '0', 10) || 0);
    const size = Math.max(1, this.pageSize);
    const page = items.slice(skip, skip + size).map(view);
    const body: WireObject = { value: page };
    if (skip + size < items.length) {
      const params = new URLSearchParams();
      if (record.query['api-version']) params.set('api-version', record.query['api-version']);
      params.set('$skiptoken', String(skip + size));
      body.nextLink = `${this.baseUrl}${rawPathname}?${params.toString()}`;
    }
    return { status: 200, body };
  }

  private subscriptionView(s: SandboxSubscription): WireObject {
    return {
      id: `/subscriptions/${s.id}`,
      subscriptionId: s.id,
      tenantId: this.tenantId,
      displayName: s.displayName,
      state: 'Enabled',
      subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
      authorizationSource: 'RoleBased',
    };
  }

  // ---------------------------------------------------------------- state helpers

  /** Builds the stored form of a top-level resource from a PUT body (or a direct `put`). */
  private normalizeTop(kind: TopKind, id: string, body: WireObject, existing: AnyTop | undefined, etag: string | undefined): AnyTop {
    const out: WireObject = {};
    for (const [k, v] of Object.entries(body)) {
      if (!['id', 'name', 'type', 'etag', 'eTag'].includes(k)) out[k] = v;
    }
    out.id = id;
    out.name = lastOf(id);
    out.type = TOP_TYPES[typeKeyOf(id)].wireType;
    if (out.location === undefined && existing?.location !== undefined) out.location = existing.location;
    const properties: WireObject = isObject(body.properties) ? { ...body.properties } : {};
    out.properties = properties;
    if (kind === 'cluster') {
      out.eTag = etag ?? newClusterEtag();
      if (properties.provisioningState === undefined) properties.provisioningState = 'Succeeded';
      if (properties.nodeResourceGroup === undefined) {
        const p = parseResourceId(id);
        properties.nodeResourceGroup =
          (existing as ArmManagedCluster | undefined)?.properties.nodeResourceGroup ?? `MC_${p.resourceGroup}_${lastOf(id)}_${String(out.location ?? 'local')}`;
      }
      return out as unknown as ArmManagedCluster;
    }
    const tag = etag ?? newNetworkEtag();
    out.etag = tag;
    properties.provisioningState = properties.provisioningState ?? 'Succeeded';
    if (properties.resourceGuid === undefined) properties.resourceGuid = (existing?.properties as WireObject | undefined)?.resourceGuid ?? randomUUID();
    if (kind === 'nsg') {
      delete properties.subnets; // computed on read from the subnets that point here
      properties.securityRules = asArray(properties.securityRules).map((r) => networkChild(id, 'securityRules', r, tag, 'Microsoft.Network/networkSecurityGroups/securityRules'));
      const defaults = asArray(properties.defaultSecurityRules);
      properties.defaultSecurityRules = (defaults.length > 0 ? defaults : defaultRules()).map((r) =>
        networkChild(id, 'defaultSecurityRules', r, tag, 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules'),
      );
      return out as unknown as ArmNetworkSecurityGroup;
    }
    properties.subnets = asArray(properties.subnets).map((s) => networkChild(id, 'subnets', s, tag, 'Microsoft.Network/virtualNetworks/subnets'));
    return out as unknown as ArmVirtualNetwork;
  }

  /** Inserts or replaces a child inside its parent; network parents and all their children get one new ETag. */
  private writeChild(parent: AnyTop, child: ChildType, id: string, body: WireObject, etag: string | undefined): void {
    this.bump(parent.id);
    const name = lastOf(id);
    const props = parent.properties as WireObject;
    const list = asArray(props[child.arrayProp]);
    const index = list.findIndex((c) => idKey(String(c.name)) === idKey(name));
    let entry: WireObject;
    if (child.arrayProp === 'agentPoolProfiles') {
      // An agent pool on the wire nests its settings under `properties`; the cluster holds them flat.
      const flat: WireObject = isObject(body.properties) ? { ...body.properties } : {};
      entry = { ...flat, name: index >= 0 ? list[index].name : name, eTag: etag ?? newClusterEtag() };
      if (entry.provisioningState === undefined) entry.provisioningState = 'Succeeded';
    } else {
      entry = { ...body, name: index >= 0 ? list[index].name : name };
    }
    if (index >= 0) list[index] = entry;
    else list.push(entry);
    props[child.arrayProp] = list;
    if (typeKeyOf(parent.id) === 'microsoft.containerservice/managedclusters') {
      (parent as ArmManagedCluster).eTag = newClusterEtag();
      return;
    }
    this.refreshNetworkEtag(parent, etag ?? newNetworkEtag());
  }

  private deleteChild(parent: AnyTop, child: ChildType, name: string): boolean {
    this.bump(parent.id);
    const props = parent.properties as WireObject;
    const list = asArray(props[child.arrayProp]);
    const kept = list.filter((c) => idKey(String(c.name)) !== idKey(name));
    if (kept.length === list.length) return false;
    props[child.arrayProp] = kept;
    if (typeKeyOf(parent.id) === 'microsoft.containerservice/managedclusters') (parent as ArmManagedCluster).eTag = newClusterEtag();
    else this.refreshNetworkEtag(parent, newNetworkEtag());
    return true;
  }

  /** Azure's network resource provider gives a parent and all its children the same ETag after any change. */
  private refreshNetworkEtag(parent: AnyTop, etag: string): void {
    const net = parent as ArmNetworkSecurityGroup | ArmVirtualNetwork;
    net.etag = etag;
    const props = net.properties as WireObject;
    const arrays = typeKeyOf(parent.id) === 'microsoft.network/networksecuritygroups' ? ['securityRules', 'defaultSecurityRules'] : ['subnets'];
    for (const prop of arrays) {
      props[prop] = asArray(props[prop]).map((c) =>
        networkChild(parent.id, prop, c, etag, prop === 'subnets' ? 'Microsoft.Network/virtualNetworks/subnets' : `Microsoft.Network/networkSecurityGroups/${prop}`),
      );
    }
  }

  /** The wire JSON of a top-level resource: a deep copy, with an NSG's `subnets` computed from the VNets. */
  private viewTop(stored: AnyTop): WireObject {
    const view = structuredClone(stored) as unknown as WireObject;
    if (typeKeyOf(stored.id) === 'microsoft.network/networksecuritygroups') {
      const subnets = this.subnetsPointingAt(stored.id);
      const props = view.properties as WireObject;
      if (subnets.length > 0) props.subnets = subnets.map((id) => ({ id }));
      else delete props.subnets;
    }
    return view;
  }

  private viewChild(parent: AnyTop, child: ChildType, entry: WireObject): WireObject {
    const copy = structuredClone(entry);
    if (child.arrayProp !== 'agentPoolProfiles') return copy;
    const { name, ...settings } = copy;
    return { id: `${parent.id}/agentPools/${String(name)}`, name, type: child.wireType, properties: settings };
  }

  /** A write to `id` (or inside it). NSG writes leave the NSG → subnets index valid (seeding 100,000 resources stays linear). */
  private bump(id: string): void {
    if (!/\/networksecuritygroups\//i.test(id)) this.vnetGeneration++;
  }

  /** NSG → the subnets that point at it; rebuilt after a VNet may have changed (so a list page stays cheap at scale). */
  private subnetsPointingAt(nsgId: string): string[] {
    if (!this.nsgSubnets || this.nsgSubnets.generation !== this.vnetGeneration) {
      const byNsg = new Map<string, string[]>();
      // By the stored wire type (set on every put), not by parsing each id: seeding a 100,000-resource
      // fleet rebuilds this after every NSG put.
      const vnetType = TOP_TYPES['microsoft.network/virtualnetworks'].wireType;
      for (const r of this.resources.values()) {
        if ((r as { type?: unknown }).type !== vnetType) continue;
        for (const subnet of (r as ArmVirtualNetwork).properties.subnets ?? []) {
          const ref = subnet.properties?.networkSecurityGroup?.id;
          if (!ref) continue;
          if (!byNsg.has(idKey(ref))) byNsg.set(idKey(ref), []);
          byNsg.get(idKey(ref))!.push(subnet.id);
        }
      }
      this.nsgSubnets = { generation: this.vnetGeneration, byNsg };
    }
    return [...(this.nsgSubnets.byNsg.get(idKey(nsgId)) ?? [])];
  }
}

// -------------------------------------------------------------------- module helpers

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  resourceId?: string;
  /** False for a delete of something that was not there (nothing to tell listeners). */
  changed?: boolean;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function matches(method: string | undefined, pattern: RegExp | undefined, record: RecordedRequest): boolean {
  if (method && method.toUpperCase() !== record.method) return false;
  if (pattern) {
    pattern.lastIndex = 0; // a /g pattern must not remember the previous test
    if (!pattern.test(record.path)) return false;
  }
  return true;
}

function parseRoute(segments: string[]): ParsedRoute | undefined {
  let i = 2;
  let resourceGroup: string | undefined;
  if (segments[i]?.toLowerCase() === 'resourcegroups') {
    if (!segments[i + 1]) return undefined;
    resourceGroup = segments[i + 1];
    i += 2;
  }
  if (segments[i]?.toLowerCase() !== 'providers' || !segments[i + 1] || i + 2 >= segments.length) return undefined;
  const namespace = segments[i + 1];
  const pairs: Array<[string, string | undefined]> = [];
  for (let j = i + 2; j < segments.length; j += 2) pairs.push([segments[j], segments[j + 1]]);
  return { subscriptionId: segments[1], resourceGroup, namespace, pairs };
}

function idFromRoute(route: ParsedRoute): string {
  return `/subscriptions/${route.subscriptionId}/resourceGroups/${route.resourceGroup}/providers/${route.namespace}/${route.pairs
    .map(([t, n]) => `${t}/${n}`)
    .join('/')}`;
}

/** Lower-cased type key of an id, e.g. "microsoft.network/networksecuritygroups/securityrules". */
function typeKeyOf(id: string): string {
  const p = parseResourceId(id);
  if (!p.provider) return '';
  return [p.provider, ...p.segments.map(([t]) => t)].join('/').toLowerCase();
}

/** "Microsoft.Network/networkSecurityGroups/securityRules" with ARM's usual casing, for operation names. */
function operationTypeOf(id: string): string {
  const key = typeKeyOf(id);
  const top = TOP_TYPES[key];
  if (top) return top.kind === 'cluster' ? 'Microsoft.ContainerService/managedClusters' : top.wireType;
  return CHILD_TYPES[key]?.wireType ?? key;
}

function parentOf(id: string): string {
  const parts = id.replace(/\/+$/, '').split('/');
  return parts.slice(0, -2).join('/');
}

function lastOf(id: string): string {
  const parts = id.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1];
}

function isObject(v: unknown): v is WireObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asArray(v: unknown): WireObject[] {
  return Array.isArray(v) ? (v.filter(isObject) as WireObject[]) : [];
}

function childArray(parent: AnyTop, child: ChildType): WireObject[] {
  return asArray((parent.properties as WireObject)[child.arrayProp]);
}

function findChild(parent: AnyTop, child: ChildType, name: string): WireObject | undefined {
  return childArray(parent, child).find((c) => idKey(String(c.name)) === idKey(name));
}

function networkChild(parentId: string, prop: string, entry: WireObject, etag: string, wireType: string): WireObject {
  const name = String(entry.name ?? '');
  if (!name) throw new ArmHttpError(400, 'InvalidRequestFormat', `Every entry of ${prop} needs a name (in ${parentId}).`);
  const properties: WireObject = isObject(entry.properties) ? { ...entry.properties } : {};
  properties.provisioningState = 'Succeeded';
  const id = typeof entry.id === 'string' && idKey(entry.id) === idKey(`${parentId}/${prop}/${name}`) ? entry.id : `${parentId}/${prop}/${name}`;
  const out: WireObject = { ...entry, name, id, etag, properties };
  if (prop !== 'defaultSecurityRules' || out.type !== undefined) out.type = wireType;
  return out;
}

function defaultRules(): WireObject[] {
  return DEFAULT_SECURITY_RULES.map((r) => ({
    name: r.name,
    properties: {
      provisioningState: 'Succeeded',
      description: r.description,
      protocol: '*',
      sourcePortRange: '*',
      destinationPortRange: '*',
      sourceAddressPrefix: r.source,
      destinationAddressPrefix: r.destination,
      access: r.access,
      priority: r.priority,
      direction: r.direction,
    },
  }));
}

function setProvisioningState(resource: AnyTop, state: string): void {
  (resource.properties as WireObject).provisioningState = state;
}

function readEtag(body: WireObject): string | undefined {
  const v = body.eTag ?? body.etag;
  return typeof v === 'string' ? v : undefined;
}

function etagOfTop(resource: AnyTop): string | undefined {
  return (resource as ArmManagedCluster).eTag ?? (resource as ArmNetworkSecurityGroup).etag;
}

function etagOfChild(child: ChildType, entry: WireObject): string | undefined {
  const v = child.arrayProp === 'agentPoolProfiles' ? entry.eTag : entry.etag;
  return typeof v === 'string' ? v : undefined;
}

function etagHeaderOf(resource: AnyTop): Record<string, string> {
  const etag = etagOfTop(resource);
  return etag ? { ETag: etag } : {};
}

function withEtagHeader(child: ChildType, answer: Answer): Answer {
  const body = answer.body as WireObject;
  const etag = child.arrayProp === 'agentPoolProfiles' ? (body.properties as WireObject | undefined)?.eTag : body.etag;
  return typeof etag === 'string' ? { ...answer, headers: { ...(answer.headers ?? {}), ETag: etag } } : answer;
}

/** ETags compared weakly: W/ prefixes and quotes do not matter. */
function sameEtag(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().replace(/^W\//i, '').replace(/^"(.*)"$/, '$1');
  return norm(a) === norm(b);
}

function splitEtags(header: string): string[] {
  return header.match(/(?:W\/)?"[^"]*"|[^,\s]+/gi) ?? [];
}

function checkPreconditions(record: RecordedRequest, currentEtag: string | undefined, exists: boolean, id: string): void {
  const ifMatch = record.headers['if-match'];
  if (ifMatch !== undefined && ifMatch.trim() !== '') {
    const tags = splitEtags(ifMatch);
    const ok = exists && (tags.includes('*') || (currentEtag !== undefined && tags.some((t) => sameEtag(t, currentEtag))));
    if (!ok) {
      throw new ArmHttpError(
        412,
        'PreconditionFailed',
        exists
          ? `The ETag in If-Match (${ifMatch}) does not match the current ETag of ${id} (${currentEtag ?? 'none'}); it was changed since it was read.`
          : `If-Match was given but ${id} does not exist.`,
      );
    }
  }
  const ifNoneMatch = record.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '' && exists) {
    const tags = splitEtags(ifNoneMatch);
    if (tags.includes('*') || (currentEtag !== undefined && tags.some((t) => sameEtag(t, currentEtag)))) {
      throw new ArmHttpError(412, 'PreconditionFailed', `${id} already exists (If-None-Match: ${ifNoneMatch}).`);
    }
  }
}

function requireObjectBody(body: unknown): WireObject {
  if (!isObject(body)) throw new ArmHttpError(400, 'InvalidRequestContent', 'The request body must be a JSON object.');
  return body;
}

/** The checks Azure makes on NSG rules that NetGuard's rule placement depends on. */
function validateRules(rules: WireObject[]): void {
  const seen = new Map<string, string>();
  for (const rule of rules) {
    const name = String(rule.name ?? '');
    const p = isObject(rule.properties) ? rule.properties : undefined;
    if (!p) throw new ArmHttpError(400, 'InvalidRequestFormat', `Security rule ${name} has no properties.`);
    const priority = p.priority;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 100 || priority > 4096) {
      throw new ArmHttpError(400, 'SecurityRuleInvalidPriority', `Security rule ${name} has invalid Priority ${String(priority)}. Value provided: ${String(priority)} Allowed range 100-4096.`);
    }
    if (typeof p.protocol !== 'string' || !RULE_PROTOCOLS.includes(p.protocol.toLowerCase())) {
      throw new ArmHttpError(400, 'InvalidRequestFormat', `Security rule ${name} has an invalid protocol ${String(p.protocol)}.`);
    }
    if (typeof p.access !== 'string' || !['allow', 'deny'].includes(p.access.toLowerCase())) {
      throw new ArmHttpError(400, 'InvalidRequestFormat', `Security rule ${name} has an invalid access ${String(p.access)}.`);
    }
    if (typeof p.direction !== 'string' || !['inbound', 'outbound'].includes(p.direction.toLowerCase())) {
      throw new ArmHttpError(400, 'InvalidRequestFormat', `Security rule ${name} has an invalid direction ${String(p.direction)}.`);
    }
    const slot = `${p.direction.toLowerCase()}/${priority}`;
    const clash = seen.get(slot);
    if (clash !== undefined) {
      throw new ArmHttpError(
        400,
        'SecurityRuleConflict',
        `Security rule ${name} conflicts with rule ${clash}. Rules cannot have the same Priority and Direction. To learn more, see aka.ms/nsgrules.`,
      );
    }
    seen.set(slot, name);
  }
}

function newClusterEtag(): string {
  return randomUUID();
}

function newNetworkEtag(): string {
  return `W/"${randomUUID()}"`;
}

function notFound(id: string, wireType: string, code = 'ResourceNotFound'): ArmHttpError {
  return new ArmHttpError(404, code, `The Resource '${wireType}/${lastOf(id)}' under resource group '${tryResourceGroup(id)}' was not found. (${id})`);
}

function tryResourceGroup(id: string): string {
  try {
    return parseResourceId(id).resourceGroup ?? '';
  } catch {
    return '';
  }
}

function unknownRoute(method: string, path: string): ArmHttpError {
  return new ArmHttpError(404, 'SandboxRouteNotFound', `The ARM sandbox does not serve ${method} ${path}.`);
}

function methodNotAllowed(method: string, path: string): ArmHttpError {
  return new ArmHttpError(405, 'MethodNotAllowed', `The ARM sandbox does not support ${method} on ${path}.`);
}

function requireMethod(method: string, allowed: string[], path: string): void {
  if (!allowed.includes(method)) throw methodNotAllowed(method, path);
}

/** The ARM action a request needs, e.g. "Microsoft.Network/networkSecurityGroups/securityRules/write". */
export function armActionOf(method: string, path: string): string {
  const verb = method === 'DELETE' ? 'delete' : method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  const segments = path.split('/').filter(Boolean);
  const providers = segments.findIndex((s) => s.toLowerCase() === 'providers');
  if (providers < 0) return `Microsoft.Resources/subscriptions/${verb}`;
  const types = segments.slice(providers + 2).filter((_, i) => i % 2 === 0);
  return [segments[providers + 1], ...types, verb].join('/');
}

function defaultErrorBody(status: number, record: RecordedRequest): unknown {
  const codes: Record<number, [string, string]> = {
    400: ['BadRequest', 'The request was rejected (injected by the ARM sandbox).'],
    401: ['AuthenticationFailed', 'Authentication failed (injected by the ARM sandbox).'],
    403: [
      'AuthorizationFailed',
      `The client 'sandbox' with object id '00000000-0000-0000-0000-000000000000' does not have authorization to perform action '${armActionOf(record.method, record.path)}' over scope '${scopeOf(record.path)}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    ],
    404: ['ResourceNotFound', `The Resource '${record.path}' was not found (injected by the ARM sandbox).`],
    409: ['Conflict', 'Another operation is in progress on this resource (injected by the ARM sandbox).'],
    412: ['PreconditionFailed', 'The condition specified using HTTP conditional header(s) is not met (injected by the ARM sandbox).'],
    429: ['TooManyRequests', 'The request is being throttled (injected by the ARM sandbox).'],
    500: ['InternalServerError', 'The server encountered an internal error (injected by the ARM sandbox).'],
    502: ['BadGateway', 'Bad gateway (injected by the ARM sandbox).'],
    503: ['ServiceUnavailable', 'The service is unavailable (injected by the ARM sandbox).'],
    504: ['GatewayTimeout', 'The gateway timed out (injected by the ARM sandbox).'],
  };
  const [code, message] = codes[status] ?? [`Http${status}`, `Injected failure ${status} (ARM sandbox).`];
  return { error: { code, message } };
}

function scopeOf(path: string): string {
  return path.replace(/\/(operations|operationresults)\/.*$/i, '');
}
