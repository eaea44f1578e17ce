// The tests drive queue functions with the product's local queue host (shared/cli/localHost.ts, what
// `aks-netguard serve` runs): receive a batch, hand each decoded message to the handler with its id
// and dequeue count, delete on success, make it visible again on failure, and after maxDequeueCount
// failed deliveries move it to `<queue>-poison`. A whole batch is handled at once, as the Functions
// host does, so finishers can race.
import type { InvocationContext } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';
import { LocalQueueHost, type HostedInvocation } from '../../shared/cli/localHost';

export type { HostedInvocation };

export interface QueueHostOptions {
  maxDequeueCount: number;
  batchSize?: number;
  /** Log lines the handlers wrote through their InvocationContext. */
  logs?: string[];
  /** Safety stop for a handler that never succeeds and a host that would never give up. */
  maxRounds?: number;
}

/** Runs `handler` over `queue` until it is empty; failed messages are retried at once (visibilityTimeout 0). */
export async function drainQueue(
  queue: QueueClient,
  poison: QueueClient,
  handler: (message: unknown, context: InvocationContext) => Promise<unknown>,
  options: QueueHostOptions,
): Promise<HostedInvocation[]> {
  if (poison.name !== `${queue.name}-poison`) throw new Error(`the poison queue of ${queue.name} is ${queue.name}-poison, not ${poison.name}`);
  await poison.createIfNotExists(); // the tests read it even when nothing was poisoned
  const host = new LocalQueueHost([{ name: 'sweepSubscription', queueName: queue.name, handler }], {
    queue: (name) => (name === queue.name ? queue : poison),
    settings: { maxDequeueCount: options.maxDequeueCount, visibilityTimeoutSeconds: 0, batchSize: options.batchSize ?? 16, functionTimeoutSeconds: 60 },
    functionLog: (_name, line) => options.logs?.push(line),
  });
  return host.drain('sweepSubscription', { maxRounds: options.maxRounds });
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
