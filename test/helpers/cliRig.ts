// The CLI as a user runs it, in process (runCli), against a fresh sandbox with a seeded fleet and a
// real Azurite: what the command prints, its exit code, and event files in a temporary folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli, type CliIo } from '../../shared/cli/main';
import type { ArmSandbox } from '../../testkit/armServer';
import type { SeededFleet } from '../../testkit/fleet';
import { seedFleet } from '../functions/eventRig';
import { useAzurite } from './azurite';
import { startSandbox } from './sandboxEnv';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRig {
  readonly sandbox: ArmSandbox;
  readonly fleet: SeededFleet;
  readonly azuriteConnectionString: string;
  /** Runs `aks-netguard ARGS` with the sandbox and Azurite in its environment (plus `env`). */
  cli(args: string[], options?: { stdin?: string; env?: Record<string, string>; armTuning?: CliIo['armTuning'] }): Promise<CliResult>;
  /** Writes an event file (JSON, or text as given) and returns its path. */
  eventFile(content: unknown): string;
}

/**
 * Registers the hooks: Azurite for the file, a temporary folder, and for each test a new sandbox with
 * the event fleet seeded (a subscription of its own, so Azure Tables state stays per test).
 */
export function useCliRig(name: string): CliRig {
  const azurite = useAzurite();
  let sandbox: ArmSandbox | undefined;
  let fleet: SeededFleet | undefined;
  let tmp: string | undefined;
  let files = 0;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `netguard-${name}-`));
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    sandbox = await startSandbox();
    fleet = seedFleet(sandbox);
  });
  afterEach(async () => {
    await sandbox?.stop();
  });

  return {
    get sandbox() {
      return sandbox!;
    },
    get fleet() {
      return fleet!;
    },
    get azuriteConnectionString() {
      return azurite.connectionString;
    },
    async cli(args, options = {}) {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, {
        stdout: (t) => (stdout += t),
        stderr: (t) => (stderr += t),
        env: { AKS_NETGUARD_ARM_ENDPOINT: sandbox!.endpoint, AzureWebJobsStorage: azurite.connectionString, ...(options.env ?? {}) },
        readStdin: async () => options.stdin ?? '',
        armTuning: options.armTuning,
      });
      return { code, stdout, stderr };
    },
    eventFile(content) {
      const file = path.join(tmp!, `event-${++files}.json`);
      fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
      return file;
    },
  };
}
