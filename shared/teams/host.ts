// Builds the bot once per process from the app settings (used by functions/teamsMessages.ts,
// functions/deliverNotices.ts and the CLI's `serve`). Loaded lazily by them: importing this file
// pulls in the Teams SDK (~0.7 s).
import { loadSettings, type Settings } from '../config';
import { createRuntime } from '../runtime';
import { storeFromEnvironment } from '../store/tables';
import type { StateStore } from '../store/types';
import { NetGuardBot, type ApprovalExecutor, type BotHttpRequest, type BotHttpResponse } from './bot';
import { teamsTablesFromEnvironment, type TeamsTables } from './channels';

export interface TeamsHost {
  bot: NetGuardBot;
  settings: Settings;
  store: StateStore;
  tables: TeamsTables;
}

/** The engine (built like the other functions' one) applies what a person approved. */
export function engineExecutor(env: NodeJS.ProcessEnv = process.env, inFunctionApp = false): ApprovalExecutor {
  // In the Function App a click must be answered in seconds: cluster updates are started and verified later.
  const { engine } = createRuntime({ env, deferClusterUpdates: inFunctionApp });
  return { executeApproval: (approval, decidedBy) => engine.executeApproval(approval, decidedBy) };
}

/**
 * `allowUnauthenticatedLoopback`: only `aks-netguard serve` (loopback only) passes true, so that the
 * Bot Framework Emulator works without a bot registration; see BotDeps. The Function App never does.
 */
export function createTeamsHost(
  env: NodeJS.ProcessEnv = process.env,
  log?: (line: string) => void,
  inFunctionApp = false,
  allowUnauthenticatedLoopback = false,
): TeamsHost {
  const settings = loadSettings(env);
  const store = storeFromEnvironment(env);
  const tables = teamsTablesFromEnvironment(env);
  if (!store || !tables) {
    throw new Error('The Teams bot needs AzureWebJobsStorage (subscriptions and approvals live there).');
  }
  // Built on the first decision (not per click), so clients and table handles are reused.
  let executor: ApprovalExecutor | undefined;
  const bot = new NetGuardBot({
    settings,
    store,
    tables,
    executor: async () => (executor ??= engineExecutor(env, inFunctionApp)),
    log,
    allowUnauthenticatedLoopback: allowUnauthenticatedLoopback && !inFunctionApp,
  });
  return { bot, settings, store, tables };
}

let shared: TeamsHost | undefined;
/** One host per process, built on first use from process.env. */
export function teamsHost(log?: (line: string) => void): TeamsHost {
  shared ??= createTeamsHost(process.env, log, true);
  return shared;
}

export async function handleBotRequest(request: BotHttpRequest, log?: (line: string) => void): Promise<BotHttpResponse> {
  return teamsHost(log).bot.process(request);
}
