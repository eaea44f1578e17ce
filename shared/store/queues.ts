// NetGuard's Storage queues (sweep, notices, verify): one way to reach a queue from the host's
// settings, one message format, one "create once, then send".
import { QueueClient } from '@azure/storage-queue';
import { queuePipelineOptions } from './clientOptions';
import { storageConnectionString, storageCredentialFromEnvironment, storageServiceUrl, usesPlainHttp } from './storageAccount';

/** A Storage queue message holds 64 KiB (the base64 text counts). */
export const MAX_QUEUE_MESSAGE = 64 * 1024;

/** The queue the settings point at: `AzureWebJobsStorage`, else the identity-based settings. */
export function queueClientFromEnvironment(env: NodeJS.ProcessEnv, queueName: string): QueueClient | undefined {
  const connection = storageConnectionString(env);
  if (connection) {
    // Azurite's explicit connection strings are plain http; shared-key requests carry a signature, not the key.
    return new QueueClient(connection, queueName, queuePipelineOptions({ allowInsecureConnection: usesPlainHttp(connection, 'queue') }));
  }
  const url = storageServiceUrl(env, 'queue');
  return url ? new QueueClient(`${url}/${queueName}`, storageCredentialFromEnvironment(env), queuePipelineOptions()) : undefined;
}

/** Messages are base64 JSON: the Functions host's queue trigger decodes base64 by default. */
export function encodeQueueJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
}

/** What the queue trigger hands over (already parsed JSON), or the raw base64 / JSON text. */
export function decodeQueueJson(message: unknown): unknown {
  if (typeof message !== 'string') return message;
  const text = message.trim();
  return JSON.parse(text.startsWith('{') ? text : Buffer.from(text, 'base64').toString('utf8'));
}

/** Creates the queue on first use (once per instance), then sends base64 JSON messages. */
export class JsonQueue {
  private ready?: Promise<unknown>;
  constructor(readonly client: QueueClient) {}

  async send(value: unknown, options: { delaySeconds?: number; what?: string } = {}): Promise<void> {
    this.ready ??= this.client.createIfNotExists().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    await this.ready;
    const message = encodeQueueJson(value);
    if (message.length > MAX_QUEUE_MESSAGE) {
      throw new Error(`The ${options.what ?? 'message'} is ${message.length} bytes, more than a queue message holds (${MAX_QUEUE_MESSAGE}).`);
    }
    const visibilityTimeout = options.delaySeconds === undefined ? undefined : Math.max(0, Math.round(options.delaySeconds));
    await this.client.sendMessage(message, visibilityTimeout === undefined ? {} : { visibilityTimeout });
  }
}
