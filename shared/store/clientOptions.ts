// How long NetGuard waits for its storage. The SDK defaults (3-4 tries, back-off up to a minute, no
// per-try timeout) made one sweep with Azurite gone take 398 s while it kept changing Azure. Storage
// is NetGuard's record of what it does, so a storage call either answers quickly or fails quickly:
// the run then stops writing (no write without a record) and says so.
import { RestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { TableServiceClientOptions } from '@azure/data-tables';
import type { StoragePipelineOptions } from '@azure/storage-queue';

/** One storage request, per try: Azure Tables and Queues answer in well under a second when healthy. */
export const STORAGE_TRY_TIMEOUT_MS = 10_000;
/** Tries after the first one (connection refused, reset, 5xx, timeout). */
export const STORAGE_MAX_RETRIES = 2;
export const STORAGE_RETRY_DELAY_MS = 250;
export const STORAGE_MAX_RETRY_DELAY_MS = 2_000;

// core-rest-pipeline has no per-try timeout option; a request's own `timeout` is one (0 = none).
const tryTimeoutPolicy: PipelinePolicy = {
  name: 'netguardStorageTryTimeout',
  sendRequest(request, next) {
    if (!request.timeout) request.timeout = STORAGE_TRY_TIMEOUT_MS;
    return next(request);
  },
};

/**
 * After a call to a storage endpoint failed to connect (refused, reset, timed out — retries
 * included), further calls to it fail at once for this long instead of each waiting through its
 * own retries: a sweep makes dozens of storage calls, and with storage gone they would add up to
 * minutes. The first call after the pause tries the endpoint again.
 */
export const STORAGE_UNREACHABLE_PAUSE_MS = 5_000;

const CONNECTION_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'REQUEST_SEND_ERROR']);
function isConnectionFailure(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; statusCode?: unknown } | undefined;
  if (!e || e.statusCode !== undefined) return false; // the service answered: it is reachable
  return (typeof e.code === 'string' && CONNECTION_FAILURES.has(e.code)) || e.name === 'AbortError' || e.name === 'TimeoutError';
}

/** Per endpoint (scheme, host and port): until when calls fail without trying. */
const unreachableUntil = new Map<string, number>();

const unreachablePausePolicy: PipelinePolicy = {
  name: 'netguardStorageUnreachablePause',
  async sendRequest(request, next) {
    const endpoint = new URL(request.url).origin;
    const until = unreachableUntil.get(endpoint);
    if (until !== undefined && Date.now() < until) {
      throw new RestError(`storage at ${endpoint} could not be reached moments ago; not trying again before ${new Date(until).toISOString()}`, {
        code: 'ECONNREFUSED',
        request,
      });
    }
    try {
      const response = await next(request);
      unreachableUntil.delete(endpoint);
      return response;
    } catch (err) {
      if (isConnectionFailure(err)) unreachableUntil.set(endpoint, Date.now() + STORAGE_UNREACHABLE_PAUSE_MS);
      else if (err && (err as { statusCode?: unknown }).statusCode !== undefined) unreachableUntil.delete(endpoint);
      throw err;
    }
  },
};

/** Options for every TableClient NetGuard builds (its state, Teams tables, sweep runs). */
export function tableClientOptions(options: { allowInsecureConnection?: boolean } = {}): TableServiceClientOptions {
  return {
    ...(options.allowInsecureConnection ? { allowInsecureConnection: true } : {}),
    retryOptions: { maxRetries: STORAGE_MAX_RETRIES, retryDelayInMs: STORAGE_RETRY_DELAY_MS, maxRetryDelayInMs: STORAGE_MAX_RETRY_DELAY_MS },
    additionalPolicies: [
      // perCall runs once around all the tries of a call; perRetry runs on each try.
      { policy: unreachablePausePolicy, position: 'perCall' },
      { policy: tryTimeoutPolicy, position: 'perRetry' },
    ],
  };
}

/** Options for every QueueClient NetGuard builds (notices, verify, sweeps). */
export function queuePipelineOptions(options: { allowInsecureConnection?: boolean } = {}): StoragePipelineOptions {
  return {
    ...(options.allowInsecureConnection ? { allowInsecureConnection: true } : {}),
    retryOptions: {
      maxTries: STORAGE_MAX_RETRIES + 1,
      tryTimeoutInMs: STORAGE_TRY_TIMEOUT_MS,
      retryDelayInMs: STORAGE_RETRY_DELAY_MS,
      maxRetryDelayInMs: STORAGE_MAX_RETRY_DELAY_MS,
    },
  } as StoragePipelineOptions;
}
