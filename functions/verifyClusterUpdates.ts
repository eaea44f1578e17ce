// Queue trigger on `netguard-verify`: looks at a cluster update NetGuard started (AKS updates take
// minutes, longer than an event or a Teams click may wait). Still running: queued again for a later
// look (also when ARM could not be read this time). Finished: re-read, re-judged and recorded; only a
// verified fix becomes `remediated`.
import { app, type InvocationContext } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import { MAX_VERIFY_ATTEMPTS, VERIFY_DELAY_SECONDS, type DeferredUpdateSink } from '../shared/engine/deferred';
import { giveUpVerifying } from '../shared/engine/verifyGiveUp';
import { functionRuntime, type Runtime } from '../shared/runtime';
import { decodePendingUpdate, VERIFY_QUEUE, VerifyQueue } from '../shared/store/verifyQueue';

export async function verifyClusterUpdates(
  message: unknown,
  context: InvocationContext,
  runtime: Runtime = functionRuntime(),
  queue: DeferredUpdateSink | undefined = VerifyQueue.fromEnvironment(process.env),
): Promise<'pending' | 'remediated' | 'failed'> {
  const update = decodePendingUpdate(message);
  // A failed status poll is followed up by reading the cluster; a look that fails altogether comes
  // back 'pending' and is queued again like a running update (bounded by MAX_VERIFY_ATTEMPTS).
  const result = await runtime.engine.verifyClusterUpdate(update);
  if (result.state === 'pending') {
    if (update.attempt >= MAX_VERIFY_ATTEMPTS || !queue) {
      // Nobody may be left thinking it was fixed: an error finding, an audit row and a Teams notice
      // (throws if they cannot be stored or queued, so the host retries this message).
      const finding = await giveUpVerifying(update, lowerFirst(result.detail), { store: runtime.store, notices: runtime.notices, clock: runtime.clock });
      context.error(`netguard verify: gave up on the update of ${update.clusterId} (${update.control}) after ${update.attempt} looks: ${finding.detail}`);
      return 'failed';
    }
    await queue.enqueue({ ...update, attempt: update.attempt + 1 }, (result.retryAfterMs ?? VERIFY_DELAY_SECONDS * 1000) / 1000);
  }
  context.log(JSON.stringify({ netguard: 'verify', clusterId: update.clusterId, control: update.control, attempt: update.attempt, state: result.state, detail: result.detail }));
  return result.state;
}

function lowerFirst(s: string): string {
  return s ? s[0].toLowerCase() + s.slice(1) : s;
}

app.storageQueue('verifyClusterUpdates', {
  queueName: VERIFY_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: instrumented((message, context) => verifyClusterUpdates(message, context).then(() => undefined)),
});
