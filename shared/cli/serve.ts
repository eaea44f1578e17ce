// `aks-netguard serve`: the Function App's HTTP endpoints on loopback, running the same handlers.
//   POST /api/events    an Event Grid webhook (validation handshake, aeg-event-type, batches, CloudEvents)
//   POST /api/messages  the Teams bot (for the Bot Framework Emulator or a tunnel)
//   POST /admin/functions/{name}  runs a timer or queue function now, as the Functions host's admin API
//                       does (with AzureWebJobsStorage; shared/cli/localHost.ts runs the queue functions)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { processEventBatch } from '../events/handler';
import { describeProblem, MalformedEventError, MAX_EVENT_INPUT_BYTES, parseEvents, parseEventsLenient } from '../events/parse';
import type { Runtime } from '../runtime';

export interface LocalServer {
  url: string;
  close(): Promise<void>;
}

export type MessagesHandler = (req: { method: string; url: string; headers: Record<string, string>; body: string }) => Promise<{
  status: number;
  headers?: Record<string, string>;
  body?: string;
}>;

export interface ServeOptions {
  port?: number;
  runtime: Runtime;
  log: (line: string) => void;
  /** The Teams handler; loaded lazily by default so the events endpoint never pays for the Teams SDK. */
  messages?: () => Promise<MessagesHandler | undefined>;
  /** Runs a non-HTTP function on demand (shared/cli/localHost.ts); absent without storage settings. */
  admin?: (name: string, body: string) => { status: number; body: unknown };
}

/**
 * Request acceptance (DESIGN.md, "Fail closed at the edges"). serve runs with the operator's own
 * Azure identity (`az login`), so a web page the operator visits must not be able to make it act:
 *   - a request carrying `Origin` comes from a browser page: 403, whatever its path;
 *   - a POST body must be JSON (`application/json`, or CloudEvents `application/cloudevents+json` /
 *     `application/cloudevents-batch+json`): a browser can send `text/plain` cross-origin without a
 *     preflight, so anything else is 415;
 *   - a body over 1 MiB (Event Grid's own limit for a delivery) is 413, answered from `Content-Length`
 *     before reading, or as soon as a chunked body passes the limit; the rest is never read or parsed.
 */
const ACCEPTED_CONTENT_TYPES = new Set(['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json']);

class Refused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Throws Refused for a request that must not be served at all (checked before its path). */
function checkOrigin(req: IncomingMessage): void {
  if (req.headers.origin !== undefined) {
    throw new Refused(403, 'requests from web pages (with an Origin header) are refused: serve is for Event Grid, the Bot Framework Emulator and tools on this machine');
  }
}

/** Reads a POST body after checking its type and size; throws Refused (415, 413) without reading more. */
function readBody(req: IncomingMessage): Promise<string> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (!ACCEPTED_CONTENT_TYPES.has(type)) {
    return Promise.reject(new Refused(415, `the body must be application/json or CloudEvents JSON (application/cloudevents+json, application/cloudevents-batch+json), not ${type || 'untyped'}`));
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_EVENT_INPUT_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_EVENT_INPUT_BYTES) {
        done = true;
        req.pause();
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (!done) reject(err);
    });
  });
}

function tooLarge(): Refused {
  return new Refused(413, `the body is larger than 1 MiB (${MAX_EVENT_INPUT_BYTES} bytes), Event Grid's limit for one delivery`);
}

/** Answers a refusal and closes the connection, so an unread body is never parsed as a next request. */
function sendRefusal(req: IncomingMessage, res: ServerResponse, refusal: Refused): void {
  res.writeHead(refusal.status, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify({ error: refusal.message }));
  // Stop taking in whatever the client is still sending once it has our answer.
  res.on('finish', () => req.socket.destroy());
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { ...(text && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers });
  res.end(text);
}

async function handleEvents(req: IncomingMessage, res: ServerResponse, options: ServeOptions): Promise<void> {
  // CloudEvents webhook abuse protection: the OPTIONS handshake.
  if (req.method === 'OPTIONS') {
    const origin = String(req.headers['webhook-request-origin'] ?? '');
    send(res, 200, undefined, origin ? { 'WebHook-Allowed-Origin': origin, 'WebHook-Allowed-Rate': '*' } : {});
    return;
  }
  if (req.method !== 'POST') return send(res, 405, { error: 'use POST' });
  const body = await readBody(req);
  const kind = String(req.headers['aeg-event-type'] ?? '').toLowerCase();
  try {
    if (kind === 'subscriptionvalidation') {
      const parsed = parseEvents(body);
      if (!parsed.validation) return send(res, 400, { error: 'aeg-event-type says SubscriptionValidation but no validation event was sent' });
      options.log(`Event Grid subscription validated (event ${parsed.validation.eventId}).`);
      return send(res, 200, { validationResponse: parsed.validation.validationCode });
    }
    const batch = parseEventsLenient(body);
    for (const p of batch.invalid) options.log(`rejected ${describeProblem(p)}`);
    if (batch.validation) return send(res, 200, { validationResponse: batch.validation.validationCode });
    const outcome = await processEventBatch(batch, options.runtime);
    for (const line of outcome.log) options.log(JSON.stringify({ netguard: 'event', ...line }));
    // 500 makes Event Grid redeliver; everything else is done (invalid events are not retried).
    if (outcome.retry) return send(res, 500, { error: outcome.retry.message });
    return send(res, 200, { summary: outcome.report.summary, rejected: outcome.invalid.map(describeProblem) });
  } catch (err) {
    if (err instanceof MalformedEventError) return send(res, 400, { error: err.message });
    throw err;
  }
}

export async function startLocalServer(options: ServeOptions): Promise<LocalServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const work = async () => {
      checkOrigin(req);
      if (path === '/api/events') return handleEvents(req, res, options);
      if (path === '/api/messages') {
        if (req.method !== 'POST') return send(res, 405, { error: 'use POST' });
        const body = await readBody(req);
        const handler = await options.messages?.();
        if (!handler) return send(res, 501, { error: 'the Teams bot is not available in this build' });
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const answer = await handler({ method: req.method ?? 'POST', url: `http://127.0.0.1${req.url}`, headers, body });
        return send(res, answer.status, answer.body ?? '', answer.headers ?? {});
      }
      const adminCall = /^\/admin\/functions\/([^/]+)$/.exec(path);
      if (adminCall) {
        if (req.method !== 'POST') return send(res, 405, { error: 'use POST' });
        if (!options.admin) return send(res, 501, { error: 'functions run on demand only with AzureWebJobsStorage set' });
        const answer = options.admin(decodeURIComponent(adminCall[1]), await readBody(req));
        return send(res, answer.status, answer.body);
      }
      return send(res, 404, { error: `no endpoint ${path}; try POST /api/events or POST /api/messages` });
    };
    work().catch((err) => {
      if (err instanceof Refused) {
        options.log(`refused ${req.method} ${path} (${err.status}): ${err.message}`);
        if (!res.headersSent) return sendRefusal(req, res, err);
      }
      options.log(`error on ${path}: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: (err as Error).message });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
