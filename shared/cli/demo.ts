// `aks-netguard demo`: the whole flow on this machine. Starts the ARM sandbox seeded with a drifted
// fleet and a real Azurite, sweeps in the default modes, shows what was fixed, what waits for a
// person and what is only reported, then sweeps again to show that a second run changes nothing.
// Two Kubernetes API stand-ins serve the clusters that show the instance-metadata cases.
import { ArmGateway } from '../azure/arm';
import { lastSegment } from '../azure/ids';
import { loadSettings } from '../config';
import { Engine } from '../engine/engine';
import { ArmSandbox } from '../../testkit/armServer';
import { KubeSandbox } from '../../testkit/kubeServer';
import { seedDriftedFleet } from '../../testkit/fleet';
import { publishedSample } from '../../testkit/samples';
import { MANAGED_SSH_RULE_NAME } from '../controls/nodeSshDeny';
import { processEventBatch } from '../events/handler';
import { parseEvents } from '../events/parse';
import type { Runtime } from '../runtime';
import { startAzurite } from '../../testkit/azuriteProcess';
import { TableStateStore } from '../store/tables';
import { onlyForAPerson } from '../teams/cards';
import type { Finding, RunReport } from '../types';
import { formatReport } from './format';
import type { CliIo } from './main';

export async function runDemo(io: CliIo, opts: { json: boolean }): Promise<number> {
  const say = (line = '') => io.stderr(`${line}\n`);
  say('Starting the local ARM sandbox, two Kubernetes API stand-ins and Azurite…');
  const sandbox = await ArmSandbox.start({ lroPolls: 1 });
  const kubes: KubeSandbox[] = [];
  let azurite: Awaited<ReturnType<typeof startAzurite>> | undefined;
  try {
    // One API server per cluster that shows its namespaces: namespaces belong to a server.
    const openNamespace = await KubeSandbox.start();
    kubes.push(openNamespace);
    const admitsImds = await KubeSandbox.start();
    kubes.push(admitsImds);
    azurite = await startAzurite();
    const seeded = seedDriftedFleet(sandbox, { kube: { openNamespace, admitsImds } });
    const kubeWrites = () => kubes.reduce((n, k) => n + k.writes().length, 0);
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
    const engine = new Engine({ arm, settings, store, topologyCache: store, progress: (l) => say(`  ${l}`), warn: (l) => say(`  warning: ${l}`) });
    const subscriptions = sandbox.listSubscriptions().map((s) => s.id);

    say('Sweep 1: every control of every cluster, in the default modes.');
    const first = await engine.sweep(subscriptions);
    say('');
    if (opts.json) io.stdout(`${JSON.stringify(first, null, 2)}\n`);
    else io.stdout(formatReport(first));
    explain(io, first);
    // A request NetGuard can only hand over: its Teams card asks a person to act instead of to approve.
    const handedOver = new Map<string, string>();
    for (const a of await store.listApprovals('pending')) {
      if (onlyForAPerson(a.change)) handedOver.set(a.clusterId.toLowerCase(), a.change.leftToPerson.map((p) => p.namespace).join(', '));
    }
    explainInstanceMetadata(say, first, handedOver);

    say('');
    say('Events: what Event Grid would deliver next.');
    const b = seeded.clusters.find((c) => c.label === 'b');
    const runtime: Runtime = { settings, arm, store, engine };
    if (b?.nsgIds[0]) {
      const ruleId = `${b.nsgIds[0]}/securityRules/${MANAGED_SSH_RULE_NAME}`;
      sandbox.remove(ruleId);
      const deleted = demoEvent('Microsoft.Resources.ResourceDeleteSuccess', 'Microsoft.Network/networkSecurityGroups/securityRules/delete', ruleId, 'demo-event-1');
      say(`  Someone deletes ${MANAGED_SSH_RULE_NAME} from ${lastSegment(b.nsgIds[0])}:`);
      await showEvent(say, runtime, [deleted]);
      say('  Event Grid delivers the same event again (it delivers at least once):');
      await showEvent(say, runtime, [deleted]);
    }
    const unrelated = demoEvent(
      'Microsoft.Resources.ResourceWriteSuccess',
      'Microsoft.Storage/storageAccounts/write',
      `/subscriptions/${seeded.subscriptionId}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/demodata`,
      'demo-event-2',
    );
    say('  A storage account is written (not NetGuard\'s business):');
    await showEvent(say, runtime, [unrelated]);

    say('');
    say('Sweep 2: the same fleet again. What was fixed stays fixed; nothing is written twice.');
    const writesBefore = arm.calls.writes;
    const kubeWritesBefore = kubeWrites();
    const second = await engine.sweep(subscriptions);
    const approvals = (await store.listApprovals('pending')).length;
    say(
      `  ${second.summary.remediated} remediated, ${arm.calls.writes - writesBefore} ARM writes, ${kubeWrites() - kubeWritesBefore} Kubernetes writes, ${approvals} approval(s) still waiting (one per finding, never two).`,
    );
    return 0;
  } finally {
    await azurite?.stop();
    for (const k of kubes) await k.stop();
    await sandbox.stop();
  }
}

/** The parts of a published Event Grid event the demo rewrites. */
interface PublishedEvent {
  data: Record<string, unknown> & { authorization: Record<string, unknown>; claims: Record<string, unknown> };
}

/** A published Event Grid sample (subscription topic), rewritten to point at a sandbox resource. */
function demoEvent(eventType: string, operationName: string, resourceId: string, id: string): Record<string, unknown> {
  const sample = publishedSample<PublishedEvent[]>('eventgrid/eventgrid-schema/subscription_ResourceDeleteSuccess.json')[0];
  const subscriptionId = resourceId.split('/')[2];
  return {
    ...sample,
    id,
    eventType,
    subject: resourceId,
    eventTime: new Date().toISOString(),
    topic: `/subscriptions/${subscriptionId}`,
    data: {
      ...sample.data,
      resourceUri: resourceId,
      operationName,
      subscriptionId,
      authorization: { ...sample.data.authorization, scope: resourceId, action: operationName },
      claims: { ...sample.data.claims, name: 'Dana Operator', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': 'dana@contoso.example' },
    },
  };
}

async function showEvent(say: (l?: string) => void, runtime: Runtime, events: unknown[]): Promise<void> {
  const outcome = await processEventBatch(parseEvents(events), runtime);
  for (const line of outcome.log) {
    say(`    event ${line.eventId}: ${line.outcome}${line.reason ? ` (${line.reason})` : ''}, ${line.armCalls} ARM call(s), ${line.ms} ms`);
  }
  for (const f of outcome.report.findings) say(`    ${f.control} on ${lastSegment(f.resourceId)}: ${f.status}, ${f.action}`);
}

/** What instance-metadata found inside each cluster, in the words of the finding (the plan included). */
function explainInstanceMetadata(say: (l?: string) => void, report: RunReport, handedOver: Map<string, string>): void {
  const findings = report.findings.filter((f: Finding) => f.control === 'instance-metadata' && f.status !== 'exempt');
  if (!findings.length) return;
  say('');
  say('Inside the clusters (instance-metadata: can pods reach 169.254.169.254 and take the node\'s tokens?):');
  // The compliant ones in one line: they all are through podLinkLocalAccess None.
  const compliant = findings.filter((f) => f.status === 'compliant').map((f) => lastSegment(f.resourceId));
  if (compliant.length) say(`  compliant (podLinkLocalAccess None, no Kubernetes call needed): ${compliant.join(', ')}.`);
  for (const f of findings.filter((x) => x.status !== 'compliant')) {
    say(`  ${lastSegment(f.resourceId)}: ${f.status}, ${f.action}.`);
    say(`    ${f.detail}`);
    const namespaces = handedOver.get(f.resourceId.toLowerCase());
    if (namespaces) {
      say(`    Nothing here for NetGuard to write (it never writes next to a team's egress policies): its Teams card asks a person to change the policies in ${namespaces}, with Acknowledge and Exempt, no Approve.`);
    }
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
