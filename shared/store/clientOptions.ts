// How long NetGuard waits for its storage. The SDK defaults (3-4 tries, back-off up to a minute, no
// per-try timeout) made one sweep with Azurite gone take 398 s while it kept changing Azure. Storage
// is NetGuard's record of what it does, so a storage call either answers quickly or fails quickly:
// the run then stops writing (no write without a record) and says so.
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
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

/** Options for every TableClient NetGuard builds (its state, Teams tables, sweep runs). */
export function tableClientOptions(options: { allowInsecureConnection?: boolean } = {}): TableServiceClientOptions {
  return {
    ...(options.allowInsecureConnection ? { allowInsecureConnection: true } : {}),
    retryOptions: { maxRetries: STORAGE_MAX_RETRIES, retryDelayInMs: STORAGE_RETRY_DELAY_MS, maxRetryDelayInMs: STORAGE_MAX_RETRY_DELAY_MS },
    additionalPolicies: [{ policy: tryTimeoutPolicy, position: 'perRetry' }],
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
