// The engine's NoticeSink as an Azure Storage queue, and the delivery of one notice to Teams.
// The engine only enqueues (cheap, no Teams SDK); functions/deliverNotices.ts takes each message off
// the queue and calls deliverNotice, which throws on failure so the Functions host retries it and,
// after its last attempt, moves it to the poison queue: a notice is never lost.
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { decodeQueueJson, encodeQueueJson, JsonQueue, queueClientFromEnvironment } from '../store/queues';
import { approvalRecordSchema, findingSchema, parseStored, plannedChangeSchema, runReportSchema } from '../store/schemas';
import type { ApprovalRecord, StateStore } from '../store/types';
import type { RunReport } from '../types';
import type { Notice, NoticeSink } from './types';

export const NOTICE_QUEUE = 'netguard-notices';

export function encodeNotice(notice: Notice): string {
  return encodeQueueJson(notice);
}

const noticeSchema: z.ZodType<Notice, z.ZodTypeDef, unknown> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('approval-requested'), approval: approvalRecordSchema }).passthrough(),
  z.object({ kind: z.literal('remediated'), finding: findingSchema, change: plannedChangeSchema, changedBy: z.string().optional(), at: z.string() }).passthrough(),
  z.object({ kind: z.literal('digest'), at: z.string(), runId: z.string().optional(), report: runReportSchema.optional() }).passthrough(),
  z
    .object({ kind: z.literal('unverified'), finding: findingSchema, change: plannedChangeSchema, startedAt: z.string(), looks: z.number(), changedBy: z.string().optional(), at: z.string() })
    .passthrough(),
]);

/** A notice as the queue trigger hands it over; throws (so the host retries, then poisons it) when it is not one. */
export function decodeNotice(message: unknown): Notice {
  return parseStored(noticeSchema, decodeQueueJson(message), 'Not a NetGuard notice');
}

export class QueueNoticeSink implements NoticeSink {
  private readonly sender: JsonQueue;
  constructor(readonly queue: QueueClient) {
    this.sender = new JsonQueue(queue);
  }

  async enqueue(notice: Notice): Promise<void> {
    // A digest of a swept estate names its run (delivery reads the report): see shared/notify/types.ts.
    await this.sender.send(notice, { what: `${notice.kind} notice` });
  }
}

/** The sink the settings point at (the same storage as the store); undefined without storage. */
export function noticeSinkFromEnvironment(env: NodeJS.ProcessEnv = process.env, queueName = NOTICE_QUEUE): QueueNoticeSink | undefined {
  const client = queueClientFromEnvironment(env, queueName);
  return client ? new QueueNoticeSink(client) : undefined;
}

/**
 * What delivery needs from the channels people read (implemented by shared/teams/delivery.ts over
 * the bot). The cards are theirs: notify never imports the Teams code, the Teams code imports notify.
 */
export interface NoticeChannels<Card = unknown> {
  /** Posts the card to every subscribed channel that has not got it yet; throws if a channel failed. */
  post(deliveryKey: string, card: Card): Promise<{ channels: number; posted: number }>;
  /** The approval card for a pending request (with its nonce). */
  approvalCard(approval: ApprovalRecord): Promise<Card>;
  /** The card telling that a drift was fixed. */
  remediationCard(notice: RemediatedNotice): Card;
  /** The card telling that a started fix could not be verified (the verify queue gave up). */
  unverifiedCard(notice: UnverifiedNotice): Card;
  /** Builds, posts and records the daily digest. */
  digest(report: RunReport, at: string): Promise<{ channels: number; posted: number }>;
}

export type RemediatedNotice = Extract<Notice, { kind: 'remediated' }>;
export type UnverifiedNotice = Extract<Notice, { kind: 'unverified' }>;

export interface DeliveryDeps<Card = unknown> {
  channels: NoticeChannels<Card>;
  /** Where a sweep's combined report is kept (shared/sweep/runs.ts SweepRunStore). */
  reports?: { combinedReport(runId: string): Promise<RunReport> };
  store: StateStore;
  log?: (line: string) => void;
}

export interface DeliveryResult {
  delivered: boolean;
  channels: number;
  posted: number;
  /** Why nothing was sent (decided approval, no channel). */
  skipped?: string;
}

/** The key under which the cards of one approval request are recorded (one per request and channel). */
export function approvalDeliveryKey(approval: Pick<ApprovalRecord, 'id' | 'requestedAt'>): string {
  return `approval|${approval.id}|${approval.requestedAt}`;
}

/** Same notice → same key, so a retried delivery skips the channels that already have the card. */
export function deliveryKeyOf(notice: Notice): string {
  switch (notice.kind) {
    case 'approval-requested':
      return approvalDeliveryKey(notice.approval);
    case 'remediated':
      return `remediated|${notice.finding.control}|${notice.finding.targetId.toLowerCase()}|${notice.at}`;
    case 'digest':
      return `digest|${notice.at}`;
    case 'unverified':
      return `unverified|${notice.finding.control}|${notice.finding.targetId.toLowerCase()}|${notice.startedAt}`;
  }
}

/** Sends one notice to every subscribed channel. Throws when Teams could not be reached (retry). */
export async function deliverNotice<Card>(notice: Notice, deps: DeliveryDeps<Card>): Promise<DeliveryResult> {
  if (notice.kind === 'digest') {
    const report = notice.report ?? (notice.runId && (await deps.reports?.combinedReport(notice.runId)));
    if (!report) throw new Error(`The digest notice of ${notice.at} names no report (run ${notice.runId ?? 'none'}), or its run cannot be read.`);
    const r = await deps.channels.digest(report, notice.at);
    return { delivered: r.channels > 0, ...r, skipped: r.channels ? undefined : 'no subscribed channel' };
  }
  if (notice.kind === 'remediated' || notice.kind === 'unverified') {
    const card = notice.kind === 'remediated' ? deps.channels.remediationCard(notice) : deps.channels.unverifiedCard(notice);
    const r = await deps.channels.post(deliveryKeyOf(notice), card);
    return { delivered: r.channels > 0, ...r, skipped: r.channels ? undefined : 'no subscribed channel' };
  }

  // An approval: send the request as it is now; a decided or superseded one needs no card any more.
  const current = await deps.store.getApproval(notice.approval.id);
  if (!current || current.state !== 'pending' || current.requestedAt !== notice.approval.requestedAt) {
    const why = !current ? 'the approval no longer exists' : current.state !== 'pending' ? `it is already ${current.state}` : 'a newer request replaced it';
    deps.log?.(`Approval card for ${notice.approval.id} not sent: ${why}.`);
    return { delivered: false, channels: 0, posted: 0, skipped: why };
  }
  const card = await deps.channels.approvalCard(current);
  const r = await deps.channels.post(deliveryKeyOf(notice), card);
  if (r.channels > 0 && !current.delivered) {
    // Bookkeeping only (status and the digest say "not delivered yet" otherwise); a lost race is fine.
    await deps.store.updateApproval({ ...current, delivered: true }).catch(() => false);
  }
  if (!r.channels) deps.log?.(`Approval ${current.id} is waiting but no channel is subscribed; it shows in status, the digest and the CLI.`);
  return { delivered: r.channels > 0, ...r, skipped: r.channels ? undefined : 'no subscribed channel' };
}
