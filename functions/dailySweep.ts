// Timer trigger: the daily sweep. Thin: list the subscriptions in scope, record the run, queue one
// message per subscription (shared/sweep/fanout.ts); sweepSubscription does the work in parallel.
// The schedule is the app setting AKS_NETGUARD_SWEEP_SCHEDULE (the host resolves %name% in a
// trigger's schedule; the infra always sets it, default '0 0 6 * * *': 06:00 UTC every day).
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { instrumented } from '../shared/functionTelemetry';
import { functionRuntime, type Runtime } from '../shared/runtime';
import { fanOutDepsFromEnvironment, fanOutSweep, type FanOutDeps, type FanOutResult } from '../shared/sweep/fanout';

export const SWEEP_SCHEDULE_SETTING = 'AKS_NETGUARD_SWEEP_SCHEDULE';

export async function dailySweep(timer: Timer | unknown, context: InvocationContext, runtime: Runtime = functionRuntime(), deps?: FanOutDeps): Promise<FanOutResult> {
  if ((timer as Timer | undefined)?.isPastDue) context.log('netguard sweep: the timer is past due (the app was down at the scheduled time); sweeping now.');
  const fanOutDeps = deps ?? fanOutDepsFromEnvironment(runtime);
  return fanOutSweep(runtime, { ...fanOutDeps, log: fanOutDeps.log ?? ((line) => context.log(line)) });
}

app.timer('dailySweep', {
  schedule: `%${SWEEP_SCHEDULE_SETTING}%`,
  handler: instrumented((timer, context) => dailySweep(timer, context).then(() => undefined)),
});
