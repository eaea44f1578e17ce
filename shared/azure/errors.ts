// ARM failures, sorted into retryable and fatal (one place decides; the engine and the functions obey).
import { isRestError } from '@azure/core-rest-pipeline';

export type ErrorClass = 'retryable' | 'fatal';

export class ArmError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly code: string | undefined,
    message: string,
    readonly method?: string,
    readonly url?: string,
  ) {
    super(message);
    this.name = 'ArmError';
  }
}

/** Raised when a write was accepted but re-reading shows it did not take. */
export class VerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

/** Raised when 412 answers keep coming after the bounded number of re-read/re-evaluate rounds. */
export class ConcurrencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConcurrencyError';
  }
}

/** Network failures after which the same request may well succeed (a timed-out try is ETIMEDOUT). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
  'REQUEST_SEND_ERROR',
]);

/** Answers worth another try: timeout, throttling, and server errors other than "not implemented". */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

export function statusOf(err: unknown): number | undefined {
  if (err instanceof ArmError) return err.status;
  if (isRestError(err)) return err.statusCode;
  return undefined;
}

export function classifyError(err: unknown): ErrorClass {
  if (err instanceof ConcurrencyError) return 'retryable';
  if (err instanceof VerificationError) return 'fatal';
  const status = statusOf(err);
  if (status !== undefined) {
    return isRetryableStatus(status) ? 'retryable' : 'fatal';
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return 'retryable';
  if ((err as Error)?.name === 'AbortError' || (err as Error)?.name === 'TimeoutError') return 'retryable';
  return 'fatal';
}

/** A sentence an operator can act on, naming the missing permission for 403s. */
export function describeError(err: unknown): string {
  const status = statusOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (status === 403) {
    const action = /action '([^']+)'/i.exec(message)?.[1];
    return action
      ? `Azure refused the call (403): NetGuard's identity lacks ${action}; grant it (see README "Deploy").`
      : `Azure refused the call (403): ${message}`;
  }
  if (status === 404) return `The resource is gone (404): ${message}`;
  if (status === 429) return `Azure throttled NetGuard (429) and retries ran out: ${message}`;
  if (status !== undefined && status >= 500) return `Azure failed (${status}): ${message}`;
  return message;
}
