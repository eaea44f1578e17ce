// The Function App's non-HTTP triggers on a laptop, for `aks-netguard serve`: the queue-triggered
// functions run against the same storage as in Azure, with the Functions host's queue semantics, and
// the timer runs on demand (POST /admin/functions/{name}, as the host's admin API does).
//
// Queue semantics, as the host's queue listener (WebJobs QueueProcessor) applies them with host.json
// `extensions.queues`:
//   - a batch of up to `batchSize` messages is received and handled at once; the next batch is fetched
//     when the whole batch is done (`newBatchThreshold: 0`);
//   - a received message stays invisible while its function may still run (`functionTimeout`);
//   - success deletes it; failure makes it visible again after `visibilityTimeout`, and once it has
//     been delivered `maxDequeueCount` times it moves to `<queue>-poison` (a message already delivered
//     more often, e.g. after a crash, moves there without being handed over again);
//   - the handler gets the decoded message (base64 text, parsed as JSON when it is JSON) and the
//     message id and dequeue count in `triggerMetadata`.
// The host backs its polling off to a minute; locally it polls every second so that a sweep's cards
// reach Teams within seconds.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';
import { queueClientFromEnvironment } from '../store/queues';
import { storageConnectionString, storageServiceUrl } from '../store/storageAccount';

export type QueueHandler = (message: unknown, context: InvocationContext) => unknown;

/** One queue-triggered function: its name, the queue it listens to and its handler. */
export interface QueueFunction {
  name: string;
  queueName: string;
  handler: QueueHandler;
}

/** One delivery of one message to a function. */
export interface HostedInvocation {
  functionName: string;
  messageId: string;
  dequeueCount: number;
  ok: boolean;
  error?: Error;
  /** Set when this delivery moved the message to the poison queue. */
  poisoned?: boolean;
}

/** The host.json settings the queue listener honours (Functions defaults when absent). */
export interface QueueSettings {
  maxDequeueCount: number;
  /** Seconds before a failed message is visible again. */
  visibilityTimeoutSeconds: number;
  batchSize: number;
  /** Seconds a received message stays invisible while its function runs. */
  functionTimeoutSeconds: number;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = { maxDequeueCount: 5, visibilityTimeoutSeconds: 0, batchSize: 16, functionTimeoutSeconds: 600 };

/** Local polling interval: short, so a queued notice is delivered within seconds. */
export const LOCAL_POLL_INTERVAL_MS = 1000;

/** "hh:mm:ss" or "d.hh:mm:ss" (a .NET TimeSpan, as host.json writes durations) in seconds. */
export function timeSpanSeconds(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/** The queue settings of a parsed host.json. */
export function queueSettingsOf(hostJson: unknown): QueueSettings {
  const root = (hostJson ?? {}) as { functionTimeout?: unknown; extensions?: { queues?: Record<string, unknown> } };
  const queues = root.extensions?.queues ?? {};
  const positive = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
  return {
    maxDequeueCount: positive(queues.maxDequeueCount) ?? DEFAULT_QUEUE_SETTINGS.maxDequeueCount,
    visibilityTimeoutSeconds: timeSpanSeconds(queues.visibilityTimeout) ?? DEFAULT_QUEUE_SETTINGS.visibilityTimeoutSeconds,
    // The host takes at most 32 messages per receive.
    batchSize: Math.min(32, positive(queues.batchSize) ?? DEFAULT_QUEUE_SETTINGS.batchSize),
    functionTimeoutSeconds: timeSpanSeconds(root.functionTimeout) ?? DEFAULT_QUEUE_SETTINGS.functionTimeoutSeconds,
  };
}

/** The project's host.json: the nearest one above `from` (source tree or dist/), or undefined. */
export function findHostJson(from: string = __dirname): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'host.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

export function queueSettingsFromHostJson(path: string | undefined = findHostJson()): QueueSettings {
  return path ? queueSettingsOf(JSON.parse(readFileSync(path, 'utf8'))) : { ...DEFAULT_QUEUE_SETTINGS };
}

/** What the queue trigger hands to the function: base64-decoded text, parsed when it is JSON. */
export function decodeQueueMessage(messageText: string): unknown {
  const text = Buffer.from(messageText, 'base64').toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text; // the host hands over a string when the message is not JSON
  }
}

export interface QueueHostOptions {
  /** The client of a queue by name (the poison queue is `<queue>-poison`). */
  queue: (queueName: string) => QueueClient;
  settings?: Partial<QueueSettings>;
  pollIntervalMs?: number;
  /** Host log lines (invocations, poison moves, storage trouble). */
  log?: (line: string) => void;
  /** What the functions write through their InvocationContext. */
  functionLog?: (functionName: string, line: string) => void;
}

function isQueueMissing(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: string; details?: { errorCode?: string } };
  return e?.statusCode === 404 || e?.details?.errorCode === 'QueueNotFound' || e?.code === 'QueueNotFound';
}

function isAbort(err: unknown): boolean {
  return (err as Error)?.name === 'AbortError';
}

/**
 * Runs queue functions the way the Functions host does. `start()` polls every queue until `stop()`;
 * `drain()` handles one queue until it is empty (tests and one-shot use).
 */
export class LocalQueueHost {
  readonly settings: QueueSettings;
  private readonly pollIntervalMs: number;
  private readonly log: (line: string) => void;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly wakers = new Set<() => void>();
  private readonly poisonReady = new Map<string, Promise<unknown>>();
  private readonly trouble = new Map<string, string>();
  private stopped = false;

  constructor(readonly functions: QueueFunction[], private readonly options: QueueHostOptions) {
    this.settings = { ...DEFAULT_QUEUE_SETTINGS, ...options.settings };
    this.pollIntervalMs = options.pollIntervalMs ?? LOCAL_POLL_INTERVAL_MS;
    this.log = options.log ?? (() => undefined);
  }

  /** One receive and the handling of what it got (nothing when the queue does not exist yet). */
  async runOnce(fn: QueueFunction): Promise<HostedInvocation[]> {
    const queue = this.options.queue(fn.queueName);
    let batch;
    try {
      ({ receivedMessageItems: batch } = await queue.receiveMessages({
        numberOfMessages: this.settings.batchSize,
        visibilityTimeout: this.settings.functionTimeoutSeconds,
        abortSignal: this.abort.signal,
      }));
    } catch (err) {
      if (isQueueMissing(err)) return []; // nothing was ever sent to it: the host keeps polling too
      throw err;
    }
    return Promise.all(batch.map((m) => this.deliver(fn, queue, m)));
  }

  private async deliver(
    fn: QueueFunction,
    queue: QueueClient,
    m: { messageId: string; popReceipt: string; messageText: string; dequeueCount: number; insertedOn: Date; expiresOn: Date; nextVisibleOn: Date },
  ): Promise<HostedInvocation> {
    const base = { functionName: fn.name, messageId: m.messageId, dequeueCount: m.dequeueCount };
    const max = this.settings.maxDequeueCount;
    if (m.dequeueCount > max) {
      // Delivered more often than allowed without an outcome (a host stopped mid-function): the host
      // moves it to the poison queue without running the function again.
      await this.toPoison(fn, queue, m);
      return { ...base, ok: false, poisoned: true, error: new Error(`dequeue count ${m.dequeueCount} is over maxDequeueCount ${max}`) };
    }
    const invocationId = randomUUID();
    const context = new InvocationContext({
      functionName: fn.name,
      invocationId,
      triggerMetadata: {
        id: m.messageId,
        dequeueCount: m.dequeueCount,
        insertionTime: m.insertedOn.toISOString(),
        expirationTime: m.expiresOn.toISOString(),
        nextVisibleTime: m.nextVisibleOn.toISOString(),
        popReceipt: m.popReceipt,
      },
      logHandler: (_level, ...args) => this.options.functionLog?.(fn.name, args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ')),
    });
    const started = Date.now();
    try {
      await fn.handler(decodeQueueMessage(m.messageText), context);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.log(`Executed 'Functions.${fn.name}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms): ${error.message}`);
      if (m.dequeueCount >= max) {
        this.log(`Message ${m.messageId} has reached MaxDequeueCount of ${max}. Moving message to queue '${fn.queueName}-poison'.`);
        await this.toPoison(fn, queue, m);
        return { ...base, ok: false, error, poisoned: true };
      }
      // Visible again after host.json visibilityTimeout: the next poll retries it.
      await queue.updateMessage(m.messageId, m.popReceipt, undefined, this.settings.visibilityTimeoutSeconds);
      return { ...base, ok: false, error };
    }
    await queue.deleteMessage(m.messageId, m.popReceipt);
    this.log(`Executed 'Functions.${fn.name}' (Succeeded, Id=${invocationId}, Duration=${Date.now() - started}ms)`);
    return { ...base, ok: true };
  }

  private async toPoison(fn: QueueFunction, queue: QueueClient, m: { messageId: string; popReceipt: string; messageText: string }): Promise<void> {
    const name = `${fn.queueName}-poison`;
    const poison = this.options.queue(name);
    let ready = this.poisonReady.get(name);
    if (!ready) {
      ready = poison.createIfNotExists().catch((e: unknown) => {
        this.poisonReady.delete(name);
        throw e;
      });
      this.poisonReady.set(name, ready);
    }
    await ready;
    await poison.sendMessage(m.messageText);
    await queue.deleteMessage(m.messageId, m.popReceipt);
  }

  /** Handles one queue until a receive finds it empty; every delivery, in order of completion. */
  async drain(name: string, options: { maxRounds?: number } = {}): Promise<HostedInvocation[]> {
    const fn = this.functionNamed(name);
    const invocations: HostedInvocation[] = [];
    for (let round = 0; round < (options.maxRounds ?? 50); round++) {
      const batch = await this.runOnce(fn);
      if (batch.length === 0) {
        // Empty now; failed messages waiting out their visibility timeout still count as work.
        const props = await this.options.queue(fn.queueName).getProperties().catch((e: unknown) => (isQueueMissing(e) ? { approximateMessagesCount: 0 } : Promise.reject(e)));
        if ((props.approximateMessagesCount ?? 0) === 0) return invocations;
        await this.sleep(Math.min(this.pollIntervalMs, 100));
        continue;
      }
      invocations.push(...batch);
    }
    throw new Error(`The queue ${fn.queueName} did not drain in ${options.maxRounds ?? 50} rounds.`);
  }

  private functionNamed(name: string): QueueFunction {
    const fn = this.functions.find((f) => f.name === name);
    if (!fn) throw new Error(`No queue function named ${name}.`);
    return fn;
  }

  /** Polls every queue until stop(). */
  start(): void {
    for (const fn of this.functions) this.loops.push(this.poll(fn));
  }

  private async poll(fn: QueueFunction): Promise<void> {
    while (!this.stopped) {
      let handled = 0;
      try {
        handled = (await this.runOnce(fn)).length;
        if (this.trouble.delete(fn.queueName)) this.log(`The queue ${fn.queueName} is reachable again.`);
      } catch (err) {
        if (this.stopped && isAbort(err)) return;
        // Said once per kind of trouble, not once a second.
        const message = (err as Error).message;
        if (this.trouble.get(fn.queueName) !== message) this.log(`Cannot read the queue ${fn.queueName} (retrying every ${this.pollIntervalMs} ms): ${message}`);
        this.trouble.set(fn.queueName, message);
      }
      // A full batch means more may be waiting: fetch the next one at once.
      if (handled === 0 && !this.stopped) await this.sleep(this.pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Stops polling (an outstanding receive is aborted) and waits for the functions already running. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    for (const wake of [...this.wakers]) wake();
    await Promise.all(this.loops);
  }
}

// ---------------------------------------------------------------------------------------------------
// The functions as registered. The Functions worker finds a v4 app's functions by loading the files
// package.json `main` matches and recording every `app.*` call; `@azure/functions` hands each
// registration to the worker through the module `@azure/functions-core`, which only the worker
// provides (without it the package warns and skips registration). The worker provides it by answering
// `require('@azure/functions-core')` itself; the local host does the same while it loads the compiled
// functions, so it records exactly the registrations (name, trigger, handler) the worker would.

export interface RegisteredFunction {
  name: string;
  /** The trigger binding: type (queueTrigger, timerTrigger, httpTrigger, eventGridTrigger, …) and its settings. */
  trigger: { type: string; [setting: string]: unknown };
  handler: (...args: unknown[]) => unknown;
}

/** The compiled functions folder next to this file (dist/functions), or undefined in the source tree. */
export function compiledFunctionsDir(from: string = __dirname): string | undefined {
  const dir = join(from, '..', '..', 'functions');
  return existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.js')) ? dir : undefined;
}

/** Loads every `*.js` of `dir` as the worker does and returns what they registered. */
export function loadRegisteredFunctions(dir: string, log: (line: string) => void = () => undefined): RegisteredFunction[] {
  const registered: RegisteredFunction[] = [];
  const coreApi = {
    version: '4.0.0-local',
    hostVersion: '4.0.0-local',
    setProgrammingModel: () => undefined,
    getProgrammingModel: () => undefined,
    registerHook: () => ({ dispose: () => undefined }),
    registerFunction: (metadata: { name: string; bindings: Record<string, { type: string; direction?: string }> }, handler: (...args: unknown[]) => unknown) => {
      const trigger = Object.values(metadata.bindings).find((b) => b.direction === 'in' && /Trigger$/.test(b.type));
      if (trigger) registered.push({ name: metadata.name, trigger: { ...trigger }, handler });
      return { dispose: () => undefined };
    },
    log: (level: string, _category: string, message: string) => {
      if (level !== 'debug' && level !== 'trace' && level !== 'information') log(message);
    },
  };
  const proto = Module.prototype as unknown as { require: (id: string) => unknown };
  const original = proto.require;
  proto.require = function (this: unknown, id: string) {
    return id === '@azure/functions-core' ? coreApi : original.call(this, id);
  };
  try {
    // By file name, as the worker loads what package.json `main` matches.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.js')).sort()) require(join(dir, file));
  } finally {
    // @azure/functions keeps the core module it got; nothing else should see the stand-in.
    proto.require = original;
  }
  return registered;
}

/** The queue-triggered functions among the registrations. */
export function queueFunctionsOf(registered: RegisteredFunction[]): Array<QueueFunction & { connection: string }> {
  return registered
    .filter((r) => r.trigger.type === 'queueTrigger' && typeof r.trigger.queueName === 'string')
    .map((r) => ({ name: r.name, queueName: r.trigger.queueName as string, connection: String(r.trigger.connection ?? 'AzureWebJobsStorage'), handler: r.handler as QueueHandler }));
}

// ---------------------------------------------------------------------------------------------------
// What `serve` runs: the queue functions polled, the others invoked on demand.

export interface LocalFunctions {
  /** The queue functions polled, and their queues. */
  queues: Array<{ name: string; queueName: string }>;
  /** Functions runnable on demand (timer and queue triggers). */
  onDemand: string[];
  /** POST /admin/functions/{name} with `{"input": "…"}`: 202 and the function runs in the background. */
  invoke(name: string, body: string): { status: number; body: unknown };
  stop(): Promise<void>;
}

export interface LocalFunctionsOptions {
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  functionsDir?: string;
  hostJson?: string;
  pollIntervalMs?: number;
}

/** Loads the compiled functions and starts polling their queues; undefined without storage settings. */
export function startLocalFunctions(options: LocalFunctionsOptions): LocalFunctions | undefined {
  const { env, log } = options;
  // No AzureWebJobsStorage (nor its identity-based settings): nothing to poll.
  if (!storageConnectionString(env) && !storageServiceUrl(env, 'queue')) return undefined;
  // The functions read their settings from the process environment, as they do in Azure.
  if (env !== process.env) throw new Error('the functions read their settings from the process environment, and serve was given another one.');
  const dir = options.functionsDir ?? compiledFunctionsDir();
  if (!dir) throw new Error('the compiled functions (dist/functions) are missing: run `npm run build` first.');
  const registered = loadRegisteredFunctions(dir, log);
  if (registered.length === 0) throw new Error(`no function registered itself from ${dir} (was @azure/functions already loaded in test mode?).`);
  const functionLog = (name: string, line: string) => log(`[${name}] ${line}`);
  const queueFunctions = queueFunctionsOf(registered).filter((f) => {
    if (f.connection === 'AzureWebJobsStorage') return true;
    log(`The queue function ${f.name} uses the connection ${f.connection}; serve only knows AzureWebJobsStorage, so it does not run.`);
    return false;
  });
  const clients = new Map<string, QueueClient>();
  const queue = (name: string) => {
    let client = clients.get(name);
    if (!client) {
      client = queueClientFromEnvironment(env, name)!;
      clients.set(name, client);
    }
    return client;
  };
  const host = new LocalQueueHost(queueFunctions, { queue, settings: queueSettingsFromHostJson(options.hostJson), pollIntervalMs: options.pollIntervalMs, log, functionLog });
  host.start();

  const running = new Set<Promise<void>>();
  const onDemand = registered.filter((r) => r.trigger.type === 'timerTrigger' || r.trigger.type === 'queueTrigger');
  let stopping = false;
  return {
    queues: queueFunctions.map((f) => ({ name: f.name, queueName: f.queueName })),
    onDemand: onDemand.map((r) => r.name),
    invoke(name, body) {
      const fn = onDemand.find((r) => r.name.toLowerCase() === name.toLowerCase());
      if (!fn) return { status: 404, body: { error: `No timer or queue function named "${name}"; these run on demand: ${onDemand.map((r) => r.name).join(', ')}.` } };
      if (stopping) return { status: 503, body: { error: 'serve is stopping.' } };
      let input: unknown;
      try {
        input = body.trim() ? (JSON.parse(body) as { input?: unknown }).input : undefined;
      } catch {
        return { status: 400, body: { error: 'The body is not JSON; send {"input": "…"} (or nothing).' } };
      }
      const invocationId = randomUUID();
      const context = new InvocationContext({ functionName: fn.name, invocationId, logHandler: (_l, ...args) => functionLog(fn.name, args.map(String).join(' ')) });
      // A timer invoked by hand is not past due; a queue function gets the input as its message.
      const trigger =
        fn.trigger.type === 'timerTrigger'
          ? { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: '', next: '', lastUpdated: '' } }
          : typeof input === 'string'
            ? (() => {
                try {
                  return JSON.parse(input);
                } catch {
                  return input;
                }
              })()
            : input;
      const started = Date.now();
      const run = Promise.resolve()
        .then(() => fn.handler(trigger, context))
        .then(
          () => log(`Executed 'Functions.${fn.name}' (Succeeded, Id=${invocationId}, Duration=${Date.now() - started}ms)`),
          (err: unknown) => log(`Executed 'Functions.${fn.name}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms): ${(err as Error)?.message ?? err}`),
        )
        .finally(() => running.delete(run));
      running.add(run);
      return { status: 202, body: { function: fn.name, invocationId } };
    },
    async stop() {
      stopping = true;
      await Promise.all([host.stop(), ...running]);
    },
  };
}
