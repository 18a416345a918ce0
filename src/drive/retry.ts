/**
 * Bounded retries with exponential backoff and full jitter, honouring the server's
 * Retry-After. Only transient failures are retried; anything else fails at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient, DriveApiError } from './api-error.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After honoured; a server asking for more gets this. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  error: unknown,
  random = Math.random,
): number {
  const retryAfter = error instanceof DriveApiError ? error.retryAfterMs : undefined;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.round(random() * ceiling);
  if (retryAfter === undefined) return jittered;
  return Math.min(policy.maxRetryAfterMs, retryAfter) + Math.round(random() * policy.baseDelayMs);
}

/**
 * Runs `work` until it succeeds, fails with a non-transient error, or has used every
 * attempt; `onRetry` hears about each failure that will be retried.
 */
export async function withRetry<T>(
  work: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  onRetry: (error: unknown, attempt: number, delayMs: number) => void = () => undefined,
  /** Which failures are worth another attempt (another API's errors, e.g. Proxmox's). */
  transient: (error: unknown) => boolean = isTransient,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (!transient(error) || attempt >= policy.attempts) throw error;
      const delay = backoffDelay(policy, attempt, error);
      onRetry(error, attempt, delay);
      await sleep(delay);
    }
  }
}
