// Takes NetGuard's notices off the `netguard-notices` queue and posts them to Teams. A failure
// throws, so the Functions host retries the message and, after maxDequeueCount attempts, moves it to
// `netguard-notices-poison`: nothing is lost. The Teams SDK is imported inside the handler.
import { app, type InvocationContext } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import { decodeNotice, deliverNotice, NOTICE_QUEUE, type DeliveryResult } from '../shared/notify/queueSink';
import { sweepRunsFromEnvironment } from '../shared/sweep/runs';

export async function deliverNotices(message: unknown, context: InvocationContext): Promise<DeliveryResult> {
  const notice = decodeNotice(message);
  const [{ teamsHost }, { teamsNoticeChannels }] = await Promise.all([import('../shared/teams/host'), import('../shared/teams/delivery')]);
  const host = teamsHost((line) => context.log(line));
  const result = await deliverNotice(notice, {
    channels: teamsNoticeChannels(host.bot, host.store, host.tables),
    store: host.store,
    reports: sweepRunsFromEnvironment(),
    log: (l) => context.log(l),
  });
  context.log(`Notice ${notice.kind}: ${result.posted} card(s) posted to ${result.channels} channel(s)${result.skipped ? ` (${result.skipped})` : ''}.`);
  return result;
}

app.storageQueue('deliverNotices', {
  queueName: NOTICE_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: instrumented((message, context) => deliverNotices(message, context).then(() => undefined), { countApprovals: true }),
});
