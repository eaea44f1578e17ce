// A local stand-in of the Bot Framework Connector service (the activity's serviceUrl) on loopback:
// records what the bot posts and updates, answers like the real service ({ id }), and can fail the
// next N calls with a status to exercise retries.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ConnectorCall {
  method: 'POST' | 'PUT';
  conversationId: string;
  /** POST …/activities/{replyToId} or PUT …/activities/{activityId}. */
  activityId?: string;
  body: Record<string, any>;
  status: number;
}

export class ConnectorStandIn {
  readonly calls: ConnectorCall[] = [];
  private failures: Array<{ status: number; remaining: number }> = [];
  private nextId = 1;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: http.Server, readonly serviceUrl: string) {}

  static async start(): Promise<ConnectorStandIn> {
    // The handler runs only for requests, which come after `standIn` is assigned below.
    const server = http.createServer((req, res) => standIn.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const standIn = new ConnectorStandIn(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    server.on('connection', (s) => {
      standIn!.sockets.add(s);
      s.on('close', () => standIn!.sockets.delete(s));
    });
    return standIn;
  }

  /** The next `times` activity calls answer `status` (then it recovers). */
  failNext(times: number, status = 500): void {
    this.failures.push({ status, remaining: times });
  }

  /** Stops failing. */
  recover(): void {
    this.failures = [];
  }

  /** Successful posts of new messages (not replies, not updates). */
  posted(): ConnectorCall[] {
    return this.calls.filter((c) => c.method === 'POST' && c.status < 300);
  }
  updates(): ConnectorCall[] {
    return this.calls.filter((c) => c.method === 'PUT' && c.status < 300);
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const match = /^\/v3\/conversations\/(.+?)\/activities(?:\/([^/]+))?$/.exec(path);
      const method = req.method as 'POST' | 'PUT';
      if (!match || (method !== 'POST' && method !== 'PUT')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NotFound', message: path } }));
        return;
      }
      let body: Record<string, any> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        /* recorded as {} */
      }
      const failure = this.failures.find((f) => f.remaining > 0);
      const status = failure ? failure.status : method === 'POST' ? 201 : 200;
      if (failure) failure.remaining--;
      this.calls.push({ method, conversationId: match[1], activityId: match[2], body, status });
      if (failure) {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'ServiceError', message: 'stand-in failure' } }));
        return;
      }
      const id = method === 'PUT' ? match[2] : `1:${this.nextId++}`;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
    });
  }
}
