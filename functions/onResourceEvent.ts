// Event Grid trigger: every resource write/delete in the watched subscriptions. Thin: parse, route,
// reconcile (shared/events), log one structured line per event, throw only when a retry can help.
import { app, type EventGridEvent, type InvocationContext } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import { processEventBatch } from '../shared/events/handler';
import { describeProblem, parseEventsLenient, MalformedEventError } from '../shared/events/parse';
import { functionRuntime, type Runtime } from '../shared/runtime';
import { SPAN_NAMES, withSpan } from '../shared/telemetry';

export async function onResourceEvent(event: EventGridEvent | unknown, context: InvocationContext, runtime: Runtime = functionRuntime()): Promise<void> {
  let batch;
  try {
    batch = parseEventsLenient(event);
  } catch (err) {
    // Not an event at all: retrying cannot fix it, so it is logged and dropped (never a retry storm).
    context.error(`netguard event rejected: ${(err as MalformedEventError).message}`);
    return;
  }
  for (const problem of batch.invalid) context.error(`netguard event rejected: ${describeProblem(problem)}`);
  if (batch.validation) {
    context.log(`netguard subscription validation ${batch.validation.eventId} acknowledged`);
    return;
  }
  const outcome = await withSpan(SPAN_NAMES.event, { 'netguard.events': batch.valid.length }, () => processEventBatch(batch, runtime));
  for (const line of outcome.log) context.log(JSON.stringify({ netguard: 'event', ...line }));
  if (outcome.retry) {
    // Event Grid redelivers with back-off for 24 h, then dead-letters: nothing is lost.
    throw new Error(`netguard: retryable failure, asking Event Grid to redeliver: ${outcome.retry.message}`);
  }
}

app.eventGrid('onResourceEvent', { handler: instrumented((event, context) => onResourceEvent(event, context)) });
