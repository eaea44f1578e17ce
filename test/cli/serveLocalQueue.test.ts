// The local queue host that `serve` runs (shared/cli/localHost.ts) against a real Azurite queue: the
// Functions host's semantics (decoded message and trigger metadata, delete on success, retry on
// failure, poison after maxDequeueCount, host.json settings) and a clean stop.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { LocalQueueHost, queueSettingsFromHostJson, type QueueHandler } from '../../shared/cli/localHost';
import { encodeQueueJson } from '../../shared/store/queues';
import { useAzurite } from '../helpers/azurite';

const azurite = useAzurite();
const insecure = { allowInsecureConnection: true } as object;

function queues(): { name: string; client: (name: string) => QueueClient } {
  const name = `local${randomBytes(5).toString('hex')}`;
  const clients = new Map<string, QueueClient>();
  return {
    name,
    client: (n) => {
      if (!clients.has(n)) clients.set(n, new QueueClient(azurite.connectionString, n, insecure));
      return clients.get(n)!;
    },
  };
}

function hostFor(q: ReturnType<typeof queues>, handler: QueueHandler, log: string[] = [], maxDequeueCount = 3): LocalQueueHost {
  return new LocalQueueHost([{ name: 'fn', queueName: q.name, handler }], {
    queue: q.client,
    settings: { maxDequeueCount, visibilityTimeoutSeconds: 0 },
    pollIntervalMs: 20,
    log: (l) => log.push(l),
  });
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

test('host.json is read as the Functions host reads it: maxDequeueCount, visibilityTimeout, batchSize, functionTimeout', () => {
  expect(queueSettingsFromHostJson(path.join(__dirname, '..', '..', 'host.json'))).toEqual({
    maxDequeueCount: 5,
    visibilityTimeoutSeconds: 30,
    batchSize: 16,
    functionTimeoutSeconds: 600,
  });
});

test('the handler gets the decoded message and its trigger metadata; a handled message is deleted', async () => {
  const q = queues();
  await q.client(q.name).createIfNotExists();
  await q.client(q.name).sendMessage(encodeQueueJson({ hello: 'world' }));
  await q.client(q.name).sendMessage(Buffer.from('not json', 'utf8').toString('base64'));
  const seen: Array<{ message: unknown; meta: Record<string, unknown> }> = [];
  const host = hostFor(q, (message, context: InvocationContext) => {
    seen.push({ message, meta: context.triggerMetadata ?? {} });
  });
  const invocations = await host.drain('fn');
  expect(invocations.map((i) => i.ok)).toEqual([true, true]);
  expect(seen.map((s) => s.message)).toEqual(expect.arrayContaining([{ hello: 'world' }, 'not json']));
  expect(seen.every((s) => typeof s.meta.id === 'string' && s.meta.dequeueCount === 1)).toBe(true);
  expect((await q.client(q.name).getProperties()).approximateMessagesCount).toBe(0);
});

test('polling: a message that always fails is delivered maxDequeueCount times, then moved to <queue>-poison unchanged', async () => {
  const q = queues();
  await q.client(q.name).createIfNotExists();
  const text = encodeQueueJson({ kind: 'approval-requested', n: 1 });
  await q.client(q.name).sendMessage(text);
  const counts: number[] = [];
  const log: string[] = [];
  const host = hostFor(q, (_m, context) => {
    counts.push(Number(context.triggerMetadata?.dequeueCount));
    throw new Error('Teams is down');
  }, log);
  host.start();
  try {
    await until(() => log.some((l) => /MaxDequeueCount of 3/.test(l)));
  } finally {
    await host.stop();
  }
  expect(counts).toEqual([1, 2, 3]);
  expect(log.filter((l) => /Failed.*Teams is down/.test(l))).toHaveLength(3);
  const poisoned = (await q.client(`${q.name}-poison`).receiveMessages({ numberOfMessages: 32 })).receivedMessageItems;
  expect(poisoned.map((m) => m.messageText)).toEqual([text]);
  expect((await q.client(q.name).getProperties()).approximateMessagesCount).toBe(0);
});

test('a message already delivered more than maxDequeueCount times (a host died mid-function) goes to poison without running', async () => {
  const q = queues();
  const queue = q.client(q.name);
  await queue.createIfNotExists();
  await queue.sendMessage(encodeQueueJson({ n: 2 }));
  // Three receives without an outcome, as three crashed hosts would leave it.
  for (let i = 0; i < 3; i++) {
    const [m] = (await queue.receiveMessages({ visibilityTimeout: 60 })).receivedMessageItems;
    await queue.updateMessage(m.messageId, m.popReceipt, undefined, 0);
  }
  let ran = 0;
  const invocations = await hostFor(q, () => void ran++, [], 2).drain('fn');
  expect(ran).toBe(0);
  expect(invocations).toEqual([expect.objectContaining({ ok: false, poisoned: true, dequeueCount: 4 })]);
  expect((await q.client(`${q.name}-poison`).getProperties()).approximateMessagesCount).toBe(1);
});

test('stop() waits for the function that is running, then no more messages are taken', async () => {
  const q = queues();
  const queue = q.client(q.name);
  await queue.createIfNotExists();
  await queue.sendMessage(encodeQueueJson({ n: 1 }));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started = 0;
  let finished = 0;
  const host = hostFor(q, async () => {
    started++;
    await gate;
    finished++;
  });
  host.start();
  await until(() => started === 1);
  const stopping = host.stop();
  await queue.sendMessage(encodeQueueJson({ n: 2 }));
  release();
  await stopping;
  expect(finished).toBe(1);
  expect(started).toBe(1);
  expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
});

test('storage that cannot be reached is said once, and stop() does not wait for the storage client to give up', async () => {
  const log: string[] = [];
  // Nothing listens on port 9 here; the SDK would retry for a long time on its own.
  const host = new LocalQueueHost([{ name: 'fn', queueName: 'netguard-notices', handler: () => undefined }], {
    queue: (n) => new QueueClient(`http://127.0.0.1:9/devstoreaccount1/${n}`, undefined, insecure),
    pollIntervalMs: 20,
    log: (l) => log.push(l),
  });
  host.start();
  await new Promise((r) => setTimeout(r, 50));
  await host.stop();
  expect(log.filter((l) => /Cannot read the queue/.test(l)).length).toBeLessThanOrEqual(1);
});
