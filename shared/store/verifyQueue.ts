// The `netguard-verify` Storage queue: started cluster updates waiting to be verified.
import { QueueClient, type StoragePipelineOptions } from '@azure/storage-queue';
import type { DeferredUpdateSink, PendingClusterUpdate } from '../engine/deferred';
import { storageConnectionString, storageCredentialFromEnvironment, storageServiceUrl, usesPlainHttp } from './storageAccount';

export const VERIFY_QUEUE = 'netguard-verify';

export function encodePendingUpdate(update: PendingClusterUpdate): string {
  return Buffer.from(JSON.stringify(update), 'utf8').toString('base64');
}

/** What the queue trigger hands over (parsed JSON) or the raw base64 / JSON text. */
export function decodePendingUpdate(message: unknown): PendingClusterUpdate {
  let value = message;
  if (typeof value === 'string') {
    const t = value.trim();
    value = JSON.parse(t.startsWith('{') ? t : Buffer.from(t, 'base64').toString('utf8'));
  }
  const u = value as Partial<PendingClusterUpdate> | null;
  if (!u || typeof u.clusterId !== 'string' || typeof u.control !== 'string' || !u.operation || !u.change) {
    throw new Error('Not a NetGuard pending cluster update (clusterId, control, operation and change are required).');
  }
  return u as PendingClusterUpdate;
}

export class VerifyQueue implements DeferredUpdateSink {
  private ready?: Promise<unknown>;
  constructor(readonly queue: QueueClient) {}

  static fromEnvironment(env: NodeJS.ProcessEnv): VerifyQueue | undefined {
    const connection = storageConnectionString(env);
    if (connection) {
      const options = (usesPlainHttp(connection, 'queue') ? { allowInsecureConnection: true } : {}) as StoragePipelineOptions;
      return new VerifyQueue(new QueueClient(connection, VERIFY_QUEUE, options));
    }
    const url = storageServiceUrl(env, 'queue');
    return url ? new VerifyQueue(new QueueClient(`${url}/${VERIFY_QUEUE}`, storageCredentialFromEnvironment(env))) : undefined;
  }

  async enqueue(update: PendingClusterUpdate, delaySeconds: number): Promise<void> {
    this.ready ??= this.queue.createIfNotExists().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    await this.ready;
    await this.queue.sendMessage(encodePendingUpdate(update), { visibilityTimeout: Math.max(0, Math.round(delaySeconds)) });
  }
}
