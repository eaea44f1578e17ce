// aks-netguard: the same engine as the Function App, from a laptop (az login) or against the sandbox.
import { Command, CommanderError, Option } from 'commander';
import { ArmGateway } from '../azure/arm';
import { ConfigError, loadSettings, parseMode, type Settings } from '../config';
import { Engine } from '../engine/engine';
import { storeFromEnvironment } from '../store/tables';
import type { StateStore } from '../store/types';
import { MODES, type Mode, type RunReport } from '../types';
import { formatReport, hasUnremediatedEnforcedDrift } from './format';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Reads all of standard input (handle-event -). */
  readStdin?: () => Promise<string>;
  /** Resolves when the user asks to stop (Ctrl-C) — for serve. */
  untilInterrupted?: () => Promise<void>;
}

export const EXIT = { ok: 0, failure: 1, usage: 2, drift: 3 } as const;

/** A usage or input error: exit 2, clear message, nothing written. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CliContext {
  settings: Settings;
  arm: ArmGateway;
  store?: StateStore;
  engine: Engine;
}

/** Builds settings, the ARM gateway and the store, refusing bad configuration before any request. */
export function buildContext(io: CliIo, quiet = false): CliContext {
  const settings = loadSettings(io.env);
  const arm = new ArmGateway({ endpoint: settings.armEndpoint });
  const store = storeFromEnvironment(io.env);
  const engine = new Engine({
    arm,
    settings,
    store,
    progress: quiet ? undefined : (line) => io.stderr(`${line}\n`),
    warn: (line) => io.stderr(`warning: ${line}\n`),
  });
  return { settings, arm, store, engine };
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
  const ctx = buildContext(io, !!opts.json && false);
  for (const s of opts.subscription ?? []) {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(s)) throw new UsageError(`--subscription: "${s}" is not a subscription id.`);
  }
  if (!ctx.store && (cliMode === 'approve' || ctx.settings.mode === 'approve' || Object.values(ctx.settings.controlModes).includes('approve'))) {
    io.stderr('warning: no AzureWebJobsStorage: approvals cannot be stored, so approve acts as report.\n');
  }
  const subscriptions = opts.subscription?.length ? opts.subscription : (ctx.settings.subscriptions ?? (await ctx.arm.listSubscriptionIds()));
  if (subscriptions.length === 0) io.stderr('warning: the identity can list no subscriptions; nothing to sweep.\n');
  const report = await ctx.engine.sweep(subscriptions, { cliMode });
  printReport(io, report, !!opts.json);
  return exitFor(report, !!opts.failOnDrift);
}

const HELP_EXAMPLES = `
Examples:
  $ aks-netguard sweep --mode report                 # dry run over every subscription you can list
  $ aks-netguard sweep --subscription 0000… --json   # one subscription, machine-readable
  $ aks-netguard sweep --fail-on-drift               # exit 3 if enforced drift remains (CI gate)
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
