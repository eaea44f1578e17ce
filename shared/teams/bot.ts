// The NetGuard bot (teams-ai Application over a Bot Framework CloudAdapter): channel subscriptions,
// `status` / `help`, and the approval card's Action.Execute clicks. The only folder that imports the
// Teams SDKs is shared/teams/, so a later move to the Teams SDK v2 touches one folder.
import { timingSafeEqual } from 'node:crypto';
import { Application, TeamsAdapter, TurnState } from '@microsoft/teams-ai';
import { ActivityTypes, CardFactory, ConfigurationBotFrameworkAuthentication, MessageFactory, TurnContext, type Activity, type ConversationReference } from 'botbuilder';
import type { Settings } from '../config';
import { approvalDeliveryKey } from '../notify/queueSink';
import type { ApprovalRecord, StateStore } from '../store/types';
import {
  APPROVAL_VERBS,
  buildApprovalCard,
  buildDecidedCard,
  formatTime,
  type AdaptiveCard,
  type ApprovalAction,
  type ApprovalActionData,
} from './cards';
import { channelOf, type TeamsTables } from './channels';
import { decideApproval, type ApprovalExecutor } from './decision';

export type { ApprovalExecutor };

export interface BotDeps {
  settings: Pick<Settings, 'approvers' | 'bot'>;
  store: StateStore;
  tables: TeamsTables;
  /** Built lazily on the first approval (it needs the ARM gateway and the engine). */
  executor: ApprovalExecutor | (() => Promise<ApprovalExecutor>);
  clock?: () => Date;
  log?: (line: string) => void;
  /** Options passed to the Bot Connector client (ConnectorClientOptions). */
  connectorOptions?: ConstructorParameters<typeof TeamsAdapter>[3];
  /**
   * Without `MicrosoftAppId` the bot refuses every request (401) unless this is set: only for local
   * work (`aks-netguard serve`, which listens on loopback only, and the tests). Even then it accepts
   * and replies to activities only when their `serviceUrl` is a loopback address (the Bot Framework
   * Emulator, the connector stand-in), so nobody can subscribe a channel whose cards would go to a
   * connector of their own.
   */
  allowUnauthenticatedLoopback?: boolean;
}

export const ACTION_INVOKE_NAME = 'adaptiveCard/action';

export const HELP_TEXT = [
  '**AKS NetGuard** keeps AKS network hardening from drifting. In a channel, write:',
  '- `subscribe`: post approval requests, fix notices and the daily digest here',
  '- `unsubscribe`: stop posting here',
  '- `status`: open drift and approvals waiting',
  '- `help`: this text',
  'Approval cards can be decided only by the Entra object ids in AKS_NETGUARD_APPROVERS.',
].join('\n\n');


const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

function tenantOf(activity: TurnContext['activity']): string | undefined {
  const fromConversation = activity.conversation?.tenantId;
  const fromChannelData = (activity.channelData as { tenant?: { id?: string } } | undefined)?.tenant?.id;
  return fromConversation ?? fromChannelData;
}

/** An Adaptive Card Action.Execute click (an invoke the bot must answer, even with a refusal). */
function isCardAction(activity: TurnContext['activity']): boolean {
  return activity.type === ActivityTypes.Invoke && activity.name === ACTION_INVOKE_NAME;
}

/**
 * Who acted. `localEmulator`: the bot runs without authentication on loopback (`serve` without
 * MicrosoftAppId), where the Bot Framework Emulator sends no Entra object id; its user id then stands
 * in for one, so a local approver can be named in AKS_NETGUARD_APPROVERS. Nothing is weakened by it:
 * without authentication anyone on the machine could claim any object id anyway.
 */
function describeActor(activity: TurnContext['activity'], localEmulator = false): { oid?: string; label: string } {
  const fallback = localEmulator && !activity.from?.aadObjectId ? activity.from?.id : undefined;
  const oid = (activity.from?.aadObjectId ?? fallback)?.toLowerCase();
  const name = activity.from?.name;
  return { oid, label: name && oid ? `${name} (${oid})` : (name ?? oid ?? activity.from?.id ?? 'unknown') };
}

/** Reads the approval button payload; anything else is a tampered or foreign action. */
function parseActionData(verb: unknown, data: unknown): ApprovalActionData | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const action = d.action;
  if (typeof d.approvalId !== 'string' || typeof d.nonce !== 'string' || typeof action !== 'string') return undefined;
  if (!(action in APPROVAL_VERBS)) return undefined;
  // The verb and the data travel separately; a payload whose two halves disagree was edited.
  if (verb !== undefined && verb !== APPROVAL_VERBS[action as ApprovalAction]) return undefined;
  return { approvalId: d.approvalId, action: action as ApprovalAction, nonce: d.nonce };
}

export class NetGuardBot {
  readonly adapter: TeamsAdapter;
  readonly app: Application<TurnState>;
  private readonly clock: () => Date;
  private executorValue?: Promise<ApprovalExecutor>;

  constructor(private readonly deps: BotDeps) {
    this.clock = deps.clock ?? (() => new Date());
    const bot = deps.settings.bot;
    // Without an app id the adapter skips authentication (local work only; DESIGN.md).
    this.adapter = new TeamsAdapter(
      bot.appId
        ? {
            MicrosoftAppId: bot.appId,
            MicrosoftAppPassword: bot.appPassword ?? '',
            MicrosoftAppType: bot.appType ?? 'SingleTenant',
            MicrosoftAppTenantId: bot.tenantId ?? '',
          }
        : {},
      undefined,
      undefined,
      deps.connectorOptions,
    );
    this.adapter.onTurnError = async (context, error) => {
      this.deps.log?.(`Teams turn failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
      if (context.activity.type === ActivityTypes.Message) await context.sendActivity('NetGuard hit an error handling that; it is in the logs.').catch(() => undefined);
    };
    // Typing indicators would be extra connector calls for replies that take milliseconds.
    this.app = new Application<TurnState>({ adapter: this.adapter, botAppId: bot.appId, startTypingTimer: false, removeRecipientMention: true, longRunningMessages: false });

    this.app.conversationUpdate('membersAdded', async (context) => {
      const botId = context.activity.recipient?.id;
      if (!context.activity.membersAdded?.some((m) => m.id === botId)) return;
      await this.subscribeHere(context);
      await context.sendActivity(`NetGuard will post approval requests, fix notices and the daily digest here. ${HELP_TEXT}`);
    });
    this.app.message(/^\s*unsubscribe\s*$/i, async (context) => {
      const was = await this.deps.tables.unsubscribe(context.activity.conversation.id);
      await context.sendActivity(was ? 'Unsubscribed: NetGuard no longer posts here.' : 'This conversation was not subscribed.');
    });
    this.app.message(/^\s*subscribe\s*$/i, async (context) => {
      const fresh = await this.subscribeHere(context);
      await context.sendActivity(
        fresh
          ? 'Subscribed: NetGuard will post approval requests, fix notices and the daily digest here.'
          : 'Already subscribed; the stored address was refreshed.',
      );
    });
    this.app.message(/^\s*status\s*$/i, async (context) => {
      await context.sendActivity(await this.statusText());
    });
    this.app.activity(ActivityTypes.Message, async (context) => {
      await context.sendActivity(HELP_TEXT);
    });
    this.app.adaptiveCards.actionExecute(
      async (context) =>
        context.activity.type === ActivityTypes.Invoke &&
        context.activity.name === ACTION_INVOKE_NAME &&
        (context.activity.value as { action?: { type?: string } } | undefined)?.action?.type === 'Action.Execute',
      async (context) => this.onAction(context),
    );
  }

  /** Runs one HTTP request through the adapter (auth included) and the Application. */
  async process(request: BotHttpRequest): Promise<BotHttpResponse> {
    const refusal = unauthenticatedRefusal(this.deps.settings.bot, request, !!this.deps.allowUnauthenticatedLoopback);
    if (refusal) {
      if (refusal.status === 403) this.deps.log?.('Refused an unauthenticated activity whose serviceUrl is not a loopback address.');
      return refusal;
    }
    const response = new CapturedResponse();
    await this.adapter.process(
      { body: request.body as Record<string, unknown> | undefined, headers: request.headers, method: request.method },
      response,
      async (context) => {
        // With MicrosoftAppTenantId set, NetGuard talks only to its own tenant: an activity from any
        // other tenant (a subscribe, a message, a card click) changes nothing and gets no reply. A
        // card click from elsewhere still gets the refusal shown to the clicker (onAction), so the
        // person learns why nothing happened; anything else is dropped here, before any handler runs.
        if (this.foreignTenant(context.activity) && !isCardAction(context.activity)) {
          this.deps.log?.(`Refused a ${context.activity.type ?? 'unknown'} activity from tenant ${tenantOf(context.activity) ?? '(none)'}: NetGuard accepts only its own tenant (MicrosoftAppTenantId).`);
          return;
        }
        await this.app.run(context);
      },
    );
    return response.result();
  }

  /** True when MicrosoftAppTenantId is set and the activity names another tenant, or none. */
  private foreignTenant(activity: TurnContext['activity']): boolean {
    const wantTenant = this.deps.settings.bot.tenantId?.toLowerCase();
    return !!wantTenant && tenantOf(activity)?.toLowerCase() !== wantTenant;
  }

  private executor(): Promise<ApprovalExecutor> {
    const e = this.deps.executor;
    this.executorValue ??= typeof e === 'function' ? e() : Promise.resolve(e);
    return this.executorValue;
  }

  /**
   * With MicrosoftAppTenantId set, only NetGuard's own tenant may subscribe a channel or read `status`
   * (as only it may decide): a channel elsewhere would receive every approval card and the digest.
   */
  /** Running as `serve` does without a bot registration: loopback connectors only, no token checked. */
  private unauthenticatedLocal(): boolean {
    return !!this.deps.allowUnauthenticatedLoopback && !this.deps.settings.bot.appId;
  }


  private async subscribeHere(context: TurnContext): Promise<boolean> {
    const activity = context.activity;
    const reference = TurnContext.getConversationReference(activity);
    const channelData = activity.channelData as { team?: { name?: string }; channel?: { name?: string } } | undefined;
    return this.deps.tables.subscribe({
      channelId: channelOf(activity.conversation.id),
      reference,
      teamName: channelData?.team?.name,
      channelName: channelData?.channel?.name ?? activity.conversation.name,
      subscribedBy: describeActor(activity).label,
      subscribedAt: this.clock().toISOString(),
    });
  }

  async statusText(): Promise<string> {
    const [findings, pending] = await Promise.all([this.deps.store.listFindings(), this.deps.store.listApprovals('pending')]);
    const open = findings.filter((f) => f.status === 'drift' && f.action !== 'remediated');
    const lines = [`**NetGuard status**: ${open.length} open drift, ${pending.length} approval(s) waiting.`];
    for (const f of open.slice(0, 20)) lines.push(`- drift: ${f.control} on ${f.targetId} (since ${formatTime(f.driftSince ?? f.at)}): ${f.detail}`);
    if (open.length > 20) lines.push(`- … and ${open.length - 20} more (see the CLI: aks-netguard sweep --mode report)`);
    for (const a of pending.sort((x, y) => x.requestedAt.localeCompare(y.requestedAt))) {
      const where = a.delivered ? '' : ' (card not delivered yet)';
      lines.push(`- waiting since ${formatTime(a.requestedAt)}: ${a.control} on ${a.targetId}${where}: ${a.change.summary}`);
    }
    return lines.join('\n\n');
  }

  /**
   * An approval button click: the activity is read here (payload, person, tenant), the decision is
   * made by decideApproval (decision.ts), and its result becomes the reply and the updated cards.
   */
  private async onAction(context: TurnContext): Promise<AdaptiveCard | string> {
    const activity = context.activity;
    const action = (activity.value as { action?: { verb?: unknown; data?: unknown } }).action ?? {};
    const data = parseActionData(action.verb, action.data);
    const actor = describeActor(activity, this.unauthenticatedLocal());
    if (!data) {
      const reason = 'This action is not a NetGuard approval button (unknown or altered payload); nothing was changed.';
      this.deps.log?.(`Approval action refused (${actor.label}): ${reason}`);
      return reason;
    }
    const result = await decideApproval(
      { approvalId: data.approvalId, action: data.action, nonce: data.nonce, actor, tenantId: tenantOf(activity) },
      {
        approvers: this.deps.settings.approvers,
        tenantId: this.deps.settings.bot.tenantId,
        store: this.deps.store,
        nonces: this.deps.tables,
        exemptions: this.deps.tables,
        executor: () => this.executor(),
        clock: this.clock,
        log: this.deps.log,
        sameNonce: sameText,
      },
    );
    if (result.kind === 'refused') return result.reason;
    if (result.kind === 'expired') {
      await this.updatePostedCards(result.record, buildDecidedCard(result.record, actor.label, result.at, { kind: 'expired' }));
      return `This request expired at ${formatTime(result.record.expiresAt)}; nothing was changed. NetGuard asks again on its next run if the drift is still there.`;
    }
    const decided = buildDecidedCard(result.record, actor.label, result.at, result.outcome);
    await this.updatePostedCards(result.record, decided);
    return decided;
  }

  /** Replaces every posted copy of the approval card (all channels) with the decided card. */
  async updatePostedCards(approval: ApprovalRecord, replacement: AdaptiveCard): Promise<number> {
    const posted = await this.deps.tables.listPosted(approvalDeliveryKey(approval));
    let updated = 0;
    for (const copy of posted) {
      try {
        await this.proactive(copy.reference, async (ctx) => {
          const activity = MessageFactory.attachment(CardFactory.adaptiveCard(replacement));
          activity.id = copy.activityId;
          await ctx.updateActivity(activity);
        });
        updated++;
      } catch (err) {
        // The decision stands; a copy that could not be refreshed still refuses further clicks.
        this.deps.log?.(`Could not update the card in ${copy.channelId}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return updated;
  }

  /**
   * Runs `logic` in a stored conversation. The adapter hands errors of proactive turns to onTurnError
   * (which only logs), so they are caught here and rethrown: a failed send must fail the delivery.
   */
  private async proactive(reference: Partial<ConversationReference>, logic: (ctx: TurnContext) => Promise<void>): Promise<void> {
    // An unauthenticated bot never sends cards (nonces included) anywhere but a local connector.
    if (!this.deps.settings.bot.appId && !isLoopbackUrl(reference.serviceUrl)) {
      throw new Error('refusing to post to a non-loopback serviceUrl without MicrosoftAppId (bot authentication is off)');
    }
    let failure: unknown;
    await this.adapter.continueConversationAsync(this.deps.settings.bot.appId ?? '', reference, async (ctx) => {
      try {
        await logic(ctx);
      } catch (err) {
        failure = err ?? new Error('proactive send failed');
      }
    });
    if (failure !== undefined) throw failure;
  }

  /**
   * Posts a card to every subscribed channel that has not received it yet (deliveryKey identifies
   * the card), so a retry after a partial failure never posts twice. Throws when a channel failed.
   */
  async postToSubscribed(deliveryKey: string, card: AdaptiveCard): Promise<{ channels: number; posted: number }> {
    const [channels, already] = await Promise.all([this.deps.tables.listChannels(), this.deps.tables.listPosted(deliveryKey)]);
    const done = new Set(already.map((p) => p.channelId.toLowerCase()));
    const failures: string[] = [];
    let posted = 0;
    for (const channel of channels) {
      if (done.has(channel.channelId.toLowerCase())) continue;
      try {
        let activityId: string | undefined;
        await this.proactive(channel.reference, async (ctx) => {
          const sent = await ctx.sendActivity(MessageFactory.attachment(CardFactory.adaptiveCard(card)));
          activityId = sent?.id;
        });
        await this.deps.tables.recordPosted(deliveryKey, { channelId: channel.channelId, activityId: activityId ?? '', reference: channel.reference });
        posted++;
      } catch (err) {
        failures.push(`${channel.channelName ?? channel.channelId}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    if (failures.length) throw new Error(`Teams delivery failed for ${failures.length} of ${channels.length} channel(s): ${failures.join('; ')}`);
    return { channels: channels.length, posted };
  }

  /** The approval card for a pending request, with its nonce. */
  async approvalCard(approval: ApprovalRecord): Promise<AdaptiveCard> {
    const nonce = await this.deps.tables.nonceFor(approval.id, approval.requestedAt);
    const finding = (await this.deps.store.listFindings().catch(() => [])).find(
      (f) => f.control === approval.control && f.targetId.toLowerCase() === approval.targetId.toLowerCase(),
    );
    return buildApprovalCard(approval, { nonce, approvers: this.deps.settings.approvers, driftSince: finding?.driftSince });
  }
}

// ---------------------------------------------------------------- authentication

/** The bot registration, read straight from the four settings (nothing else is validated here). */
export function botSettingsFromEnvironment(env: NodeJS.ProcessEnv): Settings['bot'] {
  const v = (name: string) => env[name]?.trim() || undefined;
  return { appId: v('MicrosoftAppId'), appPassword: v('MicrosoftAppPassword'), appType: v('MicrosoftAppType'), tenantId: v('MicrosoftAppTenantId') };
}

const UNAUTHORIZED: BotHttpResponse = { status: 401, headers: {} };

/**
 * The refusal for a request the bot must not serve without a Bot Framework registration, or
 * undefined. With an app id, nothing is refused here (the adapter checks the token). Without one:
 * 401 unless local unauthenticated work is allowed (serve), and then 403 unless the activity's
 * serviceUrl is a loopback address. Needs nothing but the request, so a host can call it before
 * building anything (storage, settings).
 */
export function unauthenticatedRefusal(bot: Settings['bot'], request: BotHttpRequest, allowUnauthenticatedLoopback: boolean): BotHttpResponse | undefined {
  if (bot.appId) return undefined;
  // Fail closed: with no app id the adapter would skip authentication altogether.
  if (!allowUnauthenticatedLoopback) return UNAUTHORIZED;
  const serviceUrl = (request.body as { serviceUrl?: unknown } | undefined)?.serviceUrl;
  if (isLoopbackUrl(serviceUrl)) return undefined;
  return {
    status: 403,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: 'Without MicrosoftAppId, this local bot accepts only activities whose serviceUrl is a loopback address (the Bot Framework Emulator).' }),
  };
}

/** An `http(s)` URL whose host is 127.0.0.0/8, `localhost` or `[::1]`. */
export function isLoopbackUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Validates the Bot Framework token of a request (the same check the adapter makes), without the
 * bot: the Function App calls it before building anything that needs storage or other settings, so
 * an unauthenticated caller learns nothing about the configuration. False without an app id.
 */
export async function authenticateBotRequest(
  bot: Settings['bot'],
  headers: Record<string, string | undefined>,
  body: unknown,
  log?: (line: string) => void,
): Promise<boolean> {
  if (!bot.appId) return false;
  const authHeader = headers.authorization ?? headers.Authorization ?? '';
  if (!/^Bearer\s+\S+/i.test(authHeader)) return false;
  let auth: ConfigurationBotFrameworkAuthentication;
  try {
    auth = new ConfigurationBotFrameworkAuthentication({
      MicrosoftAppId: bot.appId,
      MicrosoftAppPassword: bot.appPassword ?? '',
      MicrosoftAppType: bot.appType ?? 'SingleTenant',
      MicrosoftAppTenantId: bot.tenantId ?? '',
    });
  } catch (err) {
    // A registration the SDK rejects (e.g. UserAssignedMSI without MicrosoftAppTenantId): the operator
    // reads why in the log; the caller only gets 401, like any request that cannot be authenticated.
    log?.(`Teams bot authentication is misconfigured, every request is refused: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
  try {
    await auth.authenticateRequest((body ?? {}) as Activity, authHeader);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- HTTP plumbing

export interface BotHttpRequest {
  method: string;
  headers: Record<string, string | undefined>;
  body: unknown;
}
export interface BotHttpResponse {
  status: number;
  headers: Record<string, string>;
  body?: string;
}

/** The Response shape CloudAdapter writes to (status/header/send/end), captured for any host. */
class CapturedResponse {
  socket: unknown = undefined;
  private statusCode = 200;
  private readonly headerValues: Record<string, string> = {};
  private chunks: string[] = [];
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  header(name: string, value: unknown): this {
    this.headerValues[name.toLowerCase()] = String(value);
    return this;
  }
  send(body?: unknown): this {
    if (body === undefined || body === null) return this;
    if (typeof body === 'string' || Buffer.isBuffer(body)) this.chunks.push(body.toString());
    else {
      this.chunks.push(JSON.stringify(body));
      this.headerValues['content-type'] ??= 'application/json';
    }
    return this;
  }
  end(): this {
    return this;
  }
  result(): BotHttpResponse {
    return { status: this.statusCode, headers: this.headerValues, body: this.chunks.length ? this.chunks.join('') : undefined };
  }
}

export type { ConversationReference };
