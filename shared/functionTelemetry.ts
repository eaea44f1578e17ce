// Every registered function goes through here: telemetry starts on its first invocation (not at load,
// so an instance start never pays for the Application Insights SDK), whichever function runs first;
// functions that change what is waiting for a person then report the approvals still pending.
import { functionRuntime } from './runtime';
import { initTelemetry, reportApprovalsWaiting } from './telemetry';

export interface InstrumentOptions {
  /** After the invocation, record netguard.approvals.waiting from the store (sweeps, notices, Teams decisions). */
  countApprovals?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function instrumented<H extends (...args: any[]) => Promise<unknown>>(handler: H, options: InstrumentOptions = {}): H {
  const wrapped = async (...args: Parameters<H>) => {
    initTelemetry(); // Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set; once per instance
    try {
      return await handler(...args);
    } finally {
      if (options.countApprovals) await reportApprovalsWaiting(storeOrUndefined(), (line) => console.warn(line));
    }
  };
  return wrapped as H;
}

/** The function runtime's store; undefined when the settings do not allow a runtime (it reports that itself). */
function storeOrUndefined() {
  try {
    return functionRuntime().store;
  } catch {
    return undefined;
  }
}
