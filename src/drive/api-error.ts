import { DisklessError } from '../errors.js';

/**
 * An error answer of the ElasticStack API: HTTP status, the error type (first word of
 * the X-Elastic-Error header: usage, auth, missing, busy, system, ...) and the
 * server's one-line description.
 */
export class DriveApiError extends DisklessError {
  override name = 'DriveApiError';
  constructor(
    readonly status: number,
    readonly type: string,
    readonly detail: string,
    readonly request: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`${request}: HTTP ${status}${type ? ` ${type}` : ''}${detail ? `: ${detail}` : ''}`);
  }
}

/** A request that never got an answer: refused, reset, cut mid-body, timed out. */
export class NetworkError extends DisklessError {
  override name = 'NetworkError';
  constructor(
    readonly request: string,
    readonly code: string,
    cause: unknown,
  ) {
    super(`${request}: ${code}`, { cause });
  }
}

/** Worth another try: the network, the server (5xx), rate limiting (429), busy (409). */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof DriveApiError) {
    return error.status >= 500 || error.status === 429 || error.status === 409;
  }
  return false;
}

/** Retry-After in milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
