// A stand-in for the Functions host's queue listener, driving a queue function against a real
// (Azurite) queue the way the host does: receive with a visibility timeout, hand the decoded JSON
// to the handler with the message id and dequeue count in triggerMetadata, delete on success, make
// the message visible again on failure, and after maxDequeueCount failed deliveries move it to
// `<queue>-poison`. A whole batch is handled at once, as the host does, so finishers can race.
import { InvocationContext } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';

export interface HostedInvocation {
  messageId: string;
  dequeueCount: number;
  ok: boolean;
  error?: Error;
}

export interface QueueHostOptions {
  maxDequeueCount: number;
  batchSize?: number;
  /** Log lines the handlers wrote through their InvocationContext. */
  logs?: string[];
  /** Safety stop for a handler that never succeeds and a host that would never give up. */
  maxRounds?: number;
}

export async function drainQueue(
  queue: QueueClient,
  poison: QueueClient,
  handler: (message: unknown, context: InvocationContext) => Promise<unknown>,
  options: QueueHostOptions,
): Promise<HostedInvocation[]> {
  const invocations: HostedInvocation[] = [];
  await poison.createIfNotExists();
  for (let round = 0; round < (options.maxRounds ?? 50); round++) {
    const { receivedMessageItems: batch } = await queue.receiveMessages({ numberOfMessages: options.batchSize ?? 16, visibilityTimeout: 60 });
    if (batch.length === 0) {
      const props = await queue.getProperties();
      if ((props.approximateMessagesCount ?? 0) === 0) return invocations;
      continue;
    }
    await Promise.all(
      batch.map(async (m) => {
        const context = new InvocationContext({
          functionName: 'sweepSubscription',
          invocationId: `${m.messageId}-${m.dequeueCount}`,
          triggerMetadata: { id: m.messageId, dequeueCount: m.dequeueCount, insertionTime: m.insertedOn.toISOString() },
          logHandler: (_level, ...args) => options.logs?.push(args.map(String).join(' ')),
        });
        const text = Buffer.from(m.messageText, 'base64').toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // the host hands over a string when the message is not JSON
        }
        try {
          await handler(body, context);
          await queue.deleteMessage(m.messageId, m.popReceipt);
          invocations.push({ messageId: m.messageId, dequeueCount: m.dequeueCount, ok: true });
        } catch (err) {
          invocations.push({ messageId: m.messageId, dequeueCount: m.dequeueCount, ok: false, error: err as Error });
          if (m.dequeueCount >= options.maxDequeueCount) {
            await poison.sendMessage(m.messageText);
            await queue.deleteMessage(m.messageId, m.popReceipt);
          } else {
            await queue.updateMessage(m.messageId, m.popReceipt, undefined, 0);
          }
        }
      }),
    );
  }
  throw new Error('drainQueue: the queue did not drain');
}

/** Every message on a queue (decoded base64 JSON), removing them. */
export async function takeAll<T>(queue: QueueClient): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (receivedMessageItems.length === 0) return out;
    for (const m of receivedMessageItems) {
      out.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as T);
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
}
