// The `netguard-verify` Storage queue: started cluster updates waiting to be verified.
import type { QueueClient } from '@azure/storage-queue';
import type { DeferredUpdateSink, PendingClusterUpdate } from '../engine/deferred';
import { decodeQueueJson, JsonQueue, queueClientFromEnvironment } from './queues';
import { parseStored, pendingClusterUpdateSchema } from './schemas';

export const VERIFY_QUEUE = 'netguard-verify';

export function decodePendingUpdate(message: unknown): PendingClusterUpdate {
  return parseStored(pendingClusterUpdateSchema, decodeQueueJson(message), 'Not a NetGuard pending cluster update');
}

export class VerifyQueue implements DeferredUpdateSink {
  private readonly sender: JsonQueue;
  constructor(readonly queue: QueueClient) {
    this.sender = new JsonQueue(queue);
  }

  static fromEnvironment(env: NodeJS.ProcessEnv): VerifyQueue | undefined {
    const client = queueClientFromEnvironment(env, VERIFY_QUEUE);
    return client ? new VerifyQueue(client) : undefined;
  }

  async enqueue(update: PendingClusterUpdate, delaySeconds: number): Promise<void> {
    await this.sender.send(update, { delaySeconds, what: 'pending cluster update' });
  }
}
