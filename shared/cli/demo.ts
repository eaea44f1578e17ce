// `aks-netguard demo`: the whole flow on this machine. Starts the ARM sandbox seeded with a drifted
// fleet and a real Azurite, sweeps in the default modes, shows what was fixed, what waits for a
// person and what is only reported, then sweeps again to show that a second run changes nothing.
import { ArmGateway } from '../azure/arm';
import { lastSegment } from '../azure/ids';
import { loadSettings } from '../config';
import { Engine } from '../engine/engine';
import { ArmSandbox } from '../sandbox/armServer';
import { seedDriftedFleet } from '../sandbox/fleet';
import { startAzurite } from '../store/azuriteProcess';
import { TableStateStore } from '../store/tables';
import type { RunReport } from '../types';
import { formatReport } from './format';
import type { CliIo } from './main';

export async function runDemo(io: CliIo, opts: { json: boolean }): Promise<number> {
  const say = (line = '') => io.stderr(`${line}\n`);
  say('Starting the local ARM sandbox and Azurite…');
  const sandbox = await ArmSandbox.start({ lroPolls: 1 });
  let azurite: Awaited<ReturnType<typeof startAzurite>> | undefined;
  try {
    azurite = await startAzurite();
    const seeded = seedDriftedFleet(sandbox);
    say(`Sandbox at ${sandbox.endpoint}, seeded with:`);
    for (const c of seeded.clusters) say(`  (${c.label}) ${lastSegment(c.clusterId)}: ${c.problem}`);
    say('');

    // The demo never reads the user's own settings for Azure: it points everything at the sandbox.
    const settings = loadSettings({
      AKS_NETGUARD_ARM_ENDPOINT: sandbox.endpoint,
      AzureWebJobsStorage: azurite.connectionString,
      AKS_NETGUARD_AUTHORIZED_IP_RANGES: io.env.AKS_NETGUARD_AUTHORIZED_IP_RANGES ?? '203.0.113.0/24',
    });
    const arm = new ArmGateway({ endpoint: settings.armEndpoint, pollIntervalMs: 50 });
    const store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: 'demo' });
    const engine = new Engine({ arm, settings, store, progress: (l) => say(`  ${l}`), warn: (l) => say(`  warning: ${l}`) });
    const subscriptions = sandbox.listSubscriptions().map((s) => s.id);

    say('Sweep 1: every control of every cluster, in the default modes.');
    const first = await engine.sweep(subscriptions);
    say('');
    if (opts.json) io.stdout(`${JSON.stringify(first, null, 2)}\n`);
    else io.stdout(formatReport(first));
    explain(io, first);

    say('');
    say('Sweep 2: the same fleet again. What was fixed stays fixed; nothing is written twice.');
    const writesBefore = arm.calls.writes;
    const second = await engine.sweep(subscriptions);
    const approvals = (await store.listApprovals('pending')).length;
    say(
      `  ${second.summary.remediated} remediated, ${arm.calls.writes - writesBefore} ARM writes, ${approvals} approval(s) still waiting (one per finding, never two).`,
    );
    return 0;
  } finally {
    await azurite?.stop();
    await sandbox.stop();
  }
}

function explain(io: CliIo, report: RunReport): void {
  const s = report.summary;
  const reported = report.findings.filter((f) => f.action === 'reported').length;
  io.stderr(
    `\nWhat happened: ${s.remediated} finding(s) fixed at once (auto mode, verified by re-reading), ` +
      `${s.approvalRequested} waiting for a person (approve mode or a change to someone's access), ` +
      `${reported} only reported (advisory controls or nothing safe to restore), ${s.exempt} exempt by tag.\n`,
  );
}
