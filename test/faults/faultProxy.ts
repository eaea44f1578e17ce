// A fault-injecting HTTP proxy in front of the ARM stand-in. NetGuard's SDK clients talk to the proxy
// (AKS_NETGUARD_ARM_ENDPOINT); the proxy forwards to the stand-in and, for a seeded share of the
// requests, answers as a bad day in Azure would: throttling with and without Retry-After, 5xx,
// connection resets, stalls that never answer, writes that were applied but whose answer is lost,
// and a concurrent writer that changes the target between NetGuard's read and its write (412).
// It records every request, so the suite judges NetGuard from the outside.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hash32, mulberry32 } from './prng';

export type FaultKind =
  | 'throttle-retry-after'
  | 'throttle-bare'
  | 'server-error'
  | 'unavailable'
  | 'reset'
  | 'stall'
  | 'lost-answer-503'
  | 'lost-answer-reset'
  | 'race';

export const READ_FAULTS: FaultKind[] = ['throttle-retry-after', 'throttle-bare', 'server-error', 'unavailable', 'reset', 'stall'];
export const WRITE_FAULTS: FaultKind[] = [...READ_FAULTS, 'lost-answer-503', 'lost-answer-reset', 'race'];

export interface ProxiedRequest {
  seq: number;
  method: string;
  /** The request target exactly as sent (path and query, not decoded). */
  rawUrl: string;
  /** Decoded path without the query. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  fault?: FaultKind;
  /** True when the request reached the stand-in. */
  forwarded: boolean;
  /** What the stand-in answered (0 if not forwarded or not answered yet). */
  upstreamStatus: number;
  /** What NetGuard received (0 for a reset or stall). */
  status: number;
  body?: string;
}

export interface WriteObservation {
  request: ProxiedRequest;
  /** Snapshots of the written resource's top-level parent, from `snapshot`, around the forward. */
  before: unknown;
  after: unknown;
}

export interface FaultProxyOptions {
  /** Base URL of the stand-in, e.g. http://127.0.0.1:50123 */
  upstream: string;
  seed: number;
  /** Share of requests that get a fault (0..1). */
  rate: number;
  /** Fault kinds to draw from (default: all that fit the method). */
  kinds?: FaultKind[];
  /** Reads the current state of the resource a write path touches (for before/after judgement). */
  snapshot?: (path: string) => unknown;
  /** Told after every write that reached the stand-in. */
  onWrite?: (observation: WriteObservation) => void;
  /** A concurrent writer: changes the target (not its access) so NetGuard's If-Match fails with 412. */
  race?: (path: string) => boolean;
}

const isWriteMethod = (m: string) => ['PUT', 'PATCH', 'POST', 'DELETE'].includes(m.toUpperCase());

function armError(status: number, code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Off: every request is forwarded untouched (set-up and follow-up reads). */
  enabled = true;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly seen = new Map<string, number>();
  private readonly agent = new http.Agent({ keepAlive: false });
  private base = '';
  private seq = 0;

  private constructor(private readonly options: FaultProxyOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.base = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  get endpoint(): string {
    return this.base;
  }

  /** Closes the listener and every socket, stalled ones included. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
      this.server.closeAllConnections();
      this.agent.destroy();
    });
  }

  /** Which fault (if any) the n-th request with this method and path gets under this seed. */
  private pick(method: string, path: string): FaultKind | undefined {
    if (!this.enabled || this.options.rate <= 0) return undefined;
    const key = `${method} ${path.toLowerCase()}`;
    const n = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, n);
    const random = mulberry32(hash32(`${this.options.seed}|${key}|${n}`));
    if (random() >= this.options.rate) return undefined;
    const allowed = (this.options.kinds ?? WRITE_FAULTS).filter((k) => (isWriteMethod(method) ? WRITE_FAULTS : READ_FAULTS).includes(k));
    if (allowed.length === 0) return undefined;
    return allowed[Math.floor(random() * allowed.length)];
  }

  private rewrite(text: string, upstream: string): string {
    return text.split(upstream).join(this.base);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    let path = url.pathname;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      /* kept raw */
    }
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const method = (req.method ?? 'GET').toUpperCase();
    const record: ProxiedRequest = { seq: ++this.seq, method, rawUrl: req.url ?? '/', path, query, headers, forwarded: false, upstreamStatus: 0, status: 0 };
    if (body.length > 0 && body.length < 200_000) record.body = body.toString('utf8');
    this.requests.push(record);

    let fault = this.pick(method, path);
    // A race only makes sense for a conditional update (If-Match); otherwise the request is left alone.
    if (fault === 'race' && !(headers['if-match'] && this.options.race?.(path))) fault = undefined;
    record.fault = fault;
    const answer = (status: number, text: string, extra: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(text);
    };
    switch (fault) {
      case 'throttle-retry-after':
        return answer(429, armError(429, 'TooManyRequests', 'Injected throttling.'), { 'Retry-After': '1' });
      case 'throttle-bare':
        return answer(429, armError(429, 'TooManyRequests', 'Injected throttling without Retry-After.'));
      case 'server-error':
        return answer(500, armError(500, 'InternalServerError', 'Injected server error.'));
      case 'unavailable':
        return answer(503, armError(503, 'ServiceUnavailable', 'Injected unavailability.'));
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        // Never answers: the request hangs until NetGuard gives up (or the proxy stops).
        return;
      default:
        break;
    }

    const before = isWriteMethod(method) ? this.options.snapshot?.(path) : undefined;
    let upstream: { status: number; headers: http.IncomingHttpHeaders; body: Buffer };
    try {
      upstream = await this.forward(method, req.url ?? '/', headers, body);
    } catch {
      req.socket.destroy();
      return;
    }
    record.forwarded = true;
    record.upstreamStatus = upstream.status;
    if (isWriteMethod(method)) this.options.onWrite?.({ request: record, before, after: this.options.snapshot?.(path) });

    if (fault === 'lost-answer-503') return answer(503, armError(503, 'ServiceUnavailable', 'Injected: the write was applied, the answer lost.'));
    if (fault === 'lost-answer-reset') {
      req.socket.destroy();
      return;
    }
    const outHeaders: Record<string, string> = {};
    const upstreamBase = new URL(this.options.upstream).origin;
    for (const [k, v] of Object.entries(upstream.headers)) {
      if (v === undefined || ['content-length', 'connection', 'transfer-encoding', 'keep-alive'].includes(k)) continue;
      outHeaders[k] = this.rewrite(Array.isArray(v) ? v.join(', ') : v, upstreamBase);
    }
    // Status URLs and nextLinks name the stand-in; pointed back at the proxy so they are faulted too.
    const text = this.rewrite(upstream.body.toString('utf8'), upstreamBase);
    record.status = upstream.status;
    res.writeHead(upstream.status, outHeaders);
    res.end(text);
  }

  private forward(method: string, rawUrl: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const target = new URL(this.options.upstream);
    const outHeaders = { ...headers, host: target.host, 'content-length': String(body.length) };
    delete (outHeaders as Record<string, string>)['transfer-encoding'];
    delete (outHeaders as Record<string, string>).connection;
    return new Promise((resolve, reject) => {
      const r = http.request(
        { host: target.hostname, port: target.port, method, path: rawUrl, headers: outHeaders, agent: this.agent },
        (up) => {
          const parts: Buffer[] = [];
          up.on('data', (c: Buffer) => parts.push(c));
          up.on('end', () => resolve({ status: up.statusCode ?? 502, headers: up.headers, body: Buffer.concat(parts) }));
          up.on('error', reject);
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  }
}
