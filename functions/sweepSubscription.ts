// Queue trigger: sweeps one subscription of a daily run (shared/sweep/fanout.ts). A retryable failure
// throws, so the host redelivers this message only (host.json maxDequeueCount); on the last attempt the
// subscription is recorded as failed (the run still completes and its digest says so) and the message
// goes to netguard-sweep-poison with a log line that says so.
import { app, type InvocationContext } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import { functionRuntime, type Runtime } from '../shared/runtime';
import { SPAN_NAMES, withSpan } from '../shared/telemetry';
import { fanOutDepsFromEnvironment, handleSweepMessage, SWEEP_QUEUE, type FanOutDeps, type SweepMessageOutcome } from '../shared/sweep/fanout';

export async function sweepSubscription(message: unknown, context: InvocationContext, runtime: Runtime = functionRuntime(), deps?: FanOutDeps): Promise<SweepMessageOutcome> {
  const meta = context.triggerMetadata ?? {};
  const fanOutDeps = deps ?? fanOutDepsFromEnvironment(runtime);
  return withSpan(SPAN_NAMES.sweep, { 'netguard.queue_message': context.invocationId }, () => handleSweepMessage(
    message,
    {
      messageId: typeof meta.id === 'string' ? meta.id : undefined,
      dequeueCount: Number(meta.dequeueCount ?? 1) || 1,
      invocationId: context.invocationId,
    },
    runtime,
    { ...fanOutDeps, log: fanOutDeps.log ?? ((line) => (/POISON/.test(line) ? context.error(line) : context.log(line))) },
  ));
}

app.storageQueue('sweepSubscription', {
  queueName: SWEEP_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: instrumented((message, context) => sweepSubscription(message, context).then(() => undefined), { countApprovals: true }),
});
