// Shared set-up of the Teams tests: a real Azurite, the connector stand-in, the bot behind the
// Functions HTTP handler, and activities cloned from Microsoft's published Teams payloads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { teamsMessages } from '../../functions/teamsMessages';
import type { Settings } from '../../shared/config';
import type { ClusterPropertyChange } from '../../shared/controls/types';
import { TableStateStore } from '../../shared/store/tables';
import type { ApprovalRecord } from '../../shared/store/types';
import { NetGuardBot, type ApprovalExecutor } from '../../shared/teams/bot';
import { TeamsTables } from '../../shared/teams/channels';
import { startAzurite, type AzuriteInstance } from '../helpers/azurite';
import { ConnectorStandIn } from './connectorStandIn';

export const FIXTURES = join(__dirname, '..', 'fixtures', 'teams');
export const TENANT = 'b28fdbfd-2b78-4f93-b0f8-8881793f0f8f';
export const APPROVER = 'c5e99701-2a32-49c1-a660-4629ceeb8c61';
export const SECOND_APPROVER = 'eddfa9d4-346e-4cce-a18f-fa6261ad776b';
export const CLUSTER_ID = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod';

export function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));
}

/** Executor that records what it was asked; answers like Engine.executeApproval would. */
export class RecordingExecutor implements ApprovalExecutor {
  readonly calls: Array<{ approvalId: string; decidedBy: string }> = [];
  result: 'applied' | 'gone' | 'changed' | 'failed' = 'applied';
  detail = 'Disabled the add-on and verified it.';
  async executeApproval(approval: ApprovalRecord, decidedBy: string) {
    this.calls.push({ approvalId: approval.id, decidedBy });
    // Slow enough that two racing clicks overlap, as they would against ARM.
    await new Promise((r) => setTimeout(r, 50));
    return { result: this.result, detail: this.detail };
  }
}

export interface Harness {
  azurite: AzuriteInstance;
  connector: ConnectorStandIn;
  store: TableStateStore;
  tables: TeamsTables;
  bot: NetGuardBot;
  executor: RecordingExecutor;
  settings: Pick<Settings, 'approvers' | 'bot'>;
  log: string[];
  post(activity: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
}

export async function startHarness(
  azurite: AzuriteInstance,
  // tablePrefix: share the tables of a CLI run (which uses the default prefix); a fresh one by default.
  options: { approvers?: string[]; tenantId?: string; appId?: string; appPassword?: string; executor?: ApprovalExecutor; tablePrefix?: string } = {},
): Promise<Harness> {
  const connector = await ConnectorStandIn.start();
  const prefix = options.tablePrefix ?? `t${randomBytes(5).toString('hex')}`;
  const store = TableStateStore.fromConnectionString(azurite.connectionString, { tablePrefix: prefix });
  const tables = TeamsTables.fromConnectionString(azurite.connectionString, prefix);
  const executor = new RecordingExecutor();
  const settings = { approvers: options.approvers ?? [APPROVER, SECOND_APPROVER], bot: { tenantId: options.tenantId ?? TENANT, appId: options.appId, appPassword: options.appPassword, appType: options.appId ? 'SingleTenant' : undefined } };
  const log: string[] = [];
  // The tests post activities without Bot Framework tokens, as `serve` lets the Emulator do (loopback only).
  const bot = new NetGuardBot({ settings, store, tables, executor: options.executor ?? executor, log: (l) => log.push(l), allowUnauthenticatedLoopback: true });
  const post = async (activity: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://127.0.0.1/api/messages',
      headers: { 'content-type': 'application/json', ...headers },
      body: { string: JSON.stringify(activity) },
    });
    const context = new InvocationContext({ functionName: 'teamsMessages', invocationId: randomBytes(4).toString('hex'), logHandler: () => undefined });
    const res = await teamsMessages(request, context, (req) => bot.process(req));
    const text = res.body === undefined || res.body === null ? '' : typeof res.body === 'string' ? res.body : await new Response(res.body as ConstructorParameters<typeof Response>[0]).text();
    let body: any = text || undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* plain text, e.g. the adapter's 401 */
    }
    return { status: res.status ?? 200, body };
  };
  return { azurite, connector, store, tables, bot, executor, settings, log, post };
}

/** A channel message to the bot, cloned from the published channel @mention sample. */
export function channelMessage(h: Harness, text: string, channel = '19:6848757105754c8981c67612732d9aa7@thread.tacv2'): Record<string, any> {
  const a = fixture('teams.net_message_channel_mention.json');
  a.serviceUrl = h.connector.serviceUrl;
  a.text = `<at>ridotest</at> ${text}`;
  a.id = String(Date.now());
  a.conversation.id = `${channel};messageid=${a.id}`;
  a.conversation.tenantId = TENANT;
  a.channelData.tenant.id = TENANT;
  a.channelData.channel.id = channel;
  a.channelData.teamsChannelId = channel;
  a.from.aadObjectId = APPROVER;
  return a;
}

/** An Action.Execute click on a card posted in a channel, shaped like the published invoke sample. */
export function cardClick(h: Harness, opts: { replyToId: string; conversationId: string; verb?: string; data: unknown; from?: string; name?: string; tenant?: string }): Record<string, any> {
  const a = fixture('teams.net_invoke_adaptiveCard-action_personal.json');
  const tenant = opts.tenant ?? TENANT;
  a.serviceUrl = h.connector.serviceUrl;
  a.conversation = { id: opts.conversationId, conversationType: 'channel', isGroup: true, tenantId: tenant };
  a.channelData.tenant.id = tenant;
  a.channelData.legacy.replyToId = opts.replyToId;
  a.replyToId = opts.replyToId;
  a.from.aadObjectId = opts.from ?? APPROVER;
  a.from.name = opts.name ?? 'Rido';
  a.value = { action: { type: 'Action.Execute', title: 'Approve', ...(opts.verb ? { verb: opts.verb } : {}), data: opts.data }, trigger: 'manual' };
  return a;
}

/** The fix NetGuard plans for the HTTP application routing add-on of the test cluster. */
export function disableRoutingChange(): ClusterPropertyChange {
  return {
    kind: 'cluster-property',
    clusterId: CLUSTER_ID,
    path: ['properties', 'addonProfiles', 'httpApplicationRouting', 'enabled'],
    before: true,
    after: false,
    needsPerson: false,
    summary: 'Disable the HTTP application routing add-on of aks-prod (addonProfiles.httpApplicationRouting.enabled → false).',
  };
}

export async function pendingApproval(h: Harness, overrides: Partial<ApprovalRecord> = {}): Promise<ApprovalRecord> {
  const now = Date.now();
  const { approval } = await h.store.requestApproval({
    control: 'http-application-routing',
    clusterId: CLUSTER_ID,
    targetId: CLUSTER_ID,
    detail: 'The HTTP application routing add-on is enabled on aks-prod.',
    change: disableRoutingChange(),
    reason: 'the control is in approve mode',
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 24 * 3600_000).toISOString(),
    changedBy: 'alice@contoso.com',
    ...overrides,
  });
  return approval;
}

export { startAzurite };
