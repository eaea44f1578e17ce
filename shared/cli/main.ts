// aks-netguard: the same engine as the Function App, from a laptop (az login) or against the sandbox.
import { open } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { processEventBatch } from '../events/handler';
import { MalformedEventError, MAX_EVENT_INPUT_BYTES, parseEvents } from '../events/parse';
import { inScope } from '../azure/scope';
import { createRuntime, type RuntimeOptions } from '../runtime';
import { startLocalServer, type MessagesHandler } from './serve';
import { ConfigError, parseMode } from '../config';
import { MODES, type Mode, type RunReport } from '../types';
import { formatReport, hasUnremediatedEnforcedDrift } from './format';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /**
   * Reads standard input (handle-event -). Given `limit`, it may stop once more than `limit` bytes
   * have arrived (the caller refuses such input anyway); the text returned is then over the limit.
   */
  readStdin?: (limit?: number) => Promise<string>;
  /** Resolves when the user asks to stop (Ctrl-C) — for serve. */
  untilInterrupted?: () => Promise<void>;
  /** Tests: shorter ARM polls and retry back-off, so fault tests do not wait real seconds. */
  armTuning?: Pick<RuntimeOptions, 'pollIntervalMs' | 'armRetry'>;
}

export const EXIT = { ok: 0, failure: 1, usage: 2, drift: 3 } as const;

/** A usage or input error: exit 2, clear message, nothing written. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function modeOption(value: string | undefined): Mode | undefined {
  if (value === undefined) return undefined;
  try {
    return parseMode(value, '--mode');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function printReport(io: CliIo, report: RunReport, json: boolean): void {
  io.stdout(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
}

export function exitFor(report: RunReport, failOnDrift: boolean): number {
  return failOnDrift && hasUnremediatedEnforcedDrift(report) ? EXIT.drift : EXIT.ok;
}

async function runSweep(io: CliIo, opts: { subscription?: string[]; mode?: string; json?: boolean; failOnDrift?: boolean }): Promise<number> {
  const cliMode = modeOption(opts.mode);
  const ctx = createRuntime({
    ...io.armTuning,
    env: io.env,
    progress: (l) => io.stderr(`${l}\n`),
    warn: (l) => io.stderr(`warning: ${l}\n`),
  });
  for (const s of opts.subscription ?? []) {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(s)) throw new UsageError(`--subscription: "${s}" is not a subscription id.`);
    // AKS_NETGUARD_SUBSCRIPTIONS is the scope NetGuard may act in; a flag narrows it, never widens it.
    if (!inScope(s, ctx.settings.subscriptions)) {
      throw new UsageError(`--subscription: ${s} is outside AKS_NETGUARD_SUBSCRIPTIONS (${ctx.settings.subscriptions!.join(', ')}); NetGuard acts only in the subscriptions in scope.`);
    }
  }
  const subscriptions = opts.subscription?.length ? opts.subscription : (ctx.settings.subscriptions ?? (await ctx.arm.listSubscriptionIds()));
  if (subscriptions.length === 0) io.stderr('warning: the identity can list no subscriptions; nothing to sweep.\n');
  const { report, storageFailure } = await ctx.engine.sweepDetailed(subscriptions, { cliMode });
  printReport(io, report, !!opts.json);
  if (storageFailure) {
    // Records (audit, findings, notices) were lost and later fixes were not made: not a completed run.
    io.stderr(`aks-netguard: storage failed during the sweep, so some records were lost and NetGuard made no further change: ${storageFailure.message}\n`);
    return EXIT.failure;
  }
  return exitFor(report, !!opts.failOnDrift);
}

const tooLarge = (where: string) =>
  new UsageError(`${where} is larger than 1 MiB (${MAX_EVENT_INPUT_BYTES} bytes), Event Grid's limit for one delivery; nothing was processed.`);

/** Reads the event input, refusing more than MAX_EVENT_INPUT_BYTES before anything is parsed. */
async function readEventInput(io: CliIo, file: string | undefined): Promise<string> {
  if (file === undefined || file === '-') {
    if (!io.readStdin) throw new UsageError('no event given: name a FILE or pipe the event(s) into standard input.');
    const text = await io.readStdin(MAX_EVENT_INPUT_BYTES);
    if (Buffer.byteLength(text, 'utf8') > MAX_EVENT_INPUT_BYTES) throw tooLarge('the input on standard input');
    return text;
  }
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    // Read at most one byte past the limit (the file's size is not trusted: pipes and /dev/stdin have none).
    const buffer = Buffer.alloc(MAX_EVENT_INPUT_BYTES + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled > MAX_EVENT_INPUT_BYTES) throw tooLarge(file);
    }
    return buffer.subarray(0, filled).toString('utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
}

async function runHandleEvent(io: CliIo, file: string | undefined, opts: { mode?: string; json?: boolean }): Promise<number> {
  const cliMode = modeOption(opts.mode);
  const text = await readEventInput(io, file);
  let batch;
  try {
    batch = parseEvents(text); // strict: one malformed event and nothing is processed
  } catch (err) {
    if (err instanceof MalformedEventError) throw new UsageError(`malformed event input: ${err.message}`);
    throw err;
  }
  const runtime = createRuntime({ ...io.armTuning, env: io.env, progress: opts.json ? undefined : (l) => io.stderr(`${l}\n`), warn: (l) => io.stderr(`warning: ${l}\n`) });
  if (batch.validation) io.stderr(`Subscription validation event acknowledged (code ${batch.validation.validationCode}).\n`);
  const outcome = await processEventBatch(batch, runtime, { cliMode });
  for (const line of outcome.log) io.stderr(`${JSON.stringify({ netguard: 'event', ...line })}\n`);
  printReport(io, outcome.report, !!opts.json);
  if (outcome.retry) {
    io.stderr(`aks-netguard: a retryable failure interrupted the run (Event Grid would redeliver): ${outcome.retry.message}\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}

async function runServe(io: CliIo, opts: { port: string }): Promise<number> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: "${opts.port}" is not a port number.`);
  const runtime = createRuntime({ ...io.armTuning, env: io.env, warn: (l) => io.stderr(`warning: ${l}\n`) });
  const log = (l: string) => io.stderr(`${l}\n`);
  // With storage, the Function App's queue functions (and the timer, on demand) run here too.
  const { startLocalFunctions } = await import('./localHost');
  let functions: ReturnType<typeof startLocalFunctions>;
  let whyNot = 'AzureWebJobsStorage is not set';
  try {
    functions = startLocalFunctions({ env: io.env, log });
  } catch (err) {
    whyNot = (err as Error).message;
  }
  const server = await startLocalServer({
    port,
    runtime,
    log,
    messages: () => loadTeamsHandler(io.env),
    admin: functions?.invoke,
  }).catch(async (err: unknown) => {
    await functions?.stop();
    throw err;
  });
  io.stdout(`NetGuard is serving on ${server.url}: POST ${server.url}/api/events (Event Grid), POST ${server.url}/api/messages (Teams). Ctrl-C stops it.\n`);
  if (functions) {
    io.stdout(`Queue functions: ${functions.queues.map((q) => `${q.name} (${q.queueName})`).join(', ')}. Run one now: POST ${server.url}/admin/functions/{${functions.onDemand.join('|')}}.\n`);
  } else {
    io.stdout(`No queue function runs here (${whyNot}): approval cards and notices are not delivered.\n`);
  }
  await (io.untilInterrupted?.() ?? new Promise<void>(() => undefined));
  await server.close();
  await functions?.stop();
  io.stderr('Stopped.\n');
  return EXIT.ok;
}

/** The Teams bot, imported only when /api/messages is first called (the Teams SDK is slow to load). */
async function loadTeamsHandler(env: NodeJS.ProcessEnv): Promise<MessagesHandler> {
  const { createTeamsHost } = await import('../teams/host');
  const { authenticateBotRequest, botSettingsFromEnvironment, unauthenticatedRefusal } = await import('../teams/bot');
  const bot = botSettingsFromEnvironment(env);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let host: ReturnType<typeof createTeamsHost> | undefined;
  return async (req) => {
    let body: unknown;
    try {
      body = req.body ? JSON.parse(req.body) : undefined;
    } catch {
      return { status: 400, body: JSON.stringify({ error: 'The body is not JSON.' }), headers: { 'content-type': 'application/json' } };
    }
    // Who may talk to the bot is settled before the bot (and its storage) is built, as in the Function
    // App. serve listens on loopback only: without MicrosoftAppId its bot talks to loopback connectors only.
    const request = { method: req.method, headers: req.headers, body };
    const refusal = unauthenticatedRefusal(bot, request, true);
    if (refusal) return refusal;
    if (bot.appId && !(await authenticateBotRequest(bot, req.headers, body, log))) return { status: 401 };
    host ??= createTeamsHost(env, log, false, true);
    return host.bot.process(request);
  };
}

const HELP_EXAMPLES = `
Examples:
  $ aks-netguard sweep --mode report                 # dry run over every subscription you can list
  $ aks-netguard sweep --subscription 0000… --json   # one subscription, machine-readable
  $ aks-netguard sweep --fail-on-drift               # exit 3 if enforced drift remains (CI gate)
  $ aks-netguard handle-event event.json --json       # one Event Grid event, as the function handles it
  $ aks-netguard serve --port 7071                   # the Function App on loopback: webhook, Teams bot, queue functions
  $ aks-netguard demo                                # the whole flow against a local sandbox

Exit status: 0 run completed, 3 enforced drift left (--fail-on-drift), 2 bad usage or configuration, 1 other failure.
Settings come from the environment (AKS_NETGUARD_*, AzureWebJobsStorage); see README.md.`;

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('aks-netguard');
  program
    .description('Keeps AKS network hardening from drifting: finds, explains and repairs drift.')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run aks-netguard --help for usage)')
    .addHelpText('after', HELP_EXAMPLES);

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command('sweep')
    .description('judge every cluster of the subscriptions in scope and handle drift per mode')
    .option('--subscription <id>', 'subscription to sweep (repeatable; default AKS_NETGUARD_SUBSCRIPTIONS, else all listed)', collect)
    .addOption(new Option('--mode <mode>', `override the mode of every control (${MODES.join('|')}; report = dry run)`))
    .option('--json', 'print one JSON object (DESIGN.md contract) on stdout')
    .option('--fail-on-drift', 'exit 3 when an enforced control has unremediated drift')
    .action(async (opts) => {
      exitCode = await runSweep(io, opts);
    });

  program
    .command('handle-event')
    .description('process one Event Grid event, or an array (Event Grid schema or CloudEvents 1.0), exactly as the Event Grid function does')
    .argument('[file]', 'JSON file with the event(s); - or nothing for standard input')
    .addOption(new Option('--mode <mode>', `override the mode of every control (${MODES.join('|')}; report = dry run)`))
    .option('--json', 'print one JSON object (DESIGN.md contract) on stdout')
    .action(async (file: string | undefined, opts) => {
      exitCode = await runHandleEvent(io, file, opts);
    });

  program
    .command('serve')
    .description('serve POST /api/events (Event Grid webhook) and POST /api/messages (Teams bot) on loopback; with AzureWebJobsStorage also run the queue functions, and the timer on POST /admin/functions/dailySweep')
    .option('--port <port>', 'port on 127.0.0.1', '7071')
    .action(async (opts) => {
      exitCode = await runServe(io, opts);
    });

  program
    .command('demo')
    .description('start a local ARM sandbox seeded with a drifted fleet plus Azurite, run a sweep and show what happened')
    .option('--json', 'print the sweep report as JSON')
    .action(async (opts) => {
      const { runDemo } = await import('./demo');
      exitCode = await runDemo(io, { json: !!opts.json });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.stderr(`aks-netguard: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`aks-netguard: ${(err as Error)?.message ?? String(err)}\n`);
    return EXIT.failure;
  }
}
