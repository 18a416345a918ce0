/**
 * API errors as the service reports them: the HTTP status, an `X-Elastic-Error` header
 * whose first word is the error type, and a one-line plain-text body
 * `errors:<type> <message>` (plain text in JSON mode too: JSON error bodies are not
 * documented).
 */
export type ErrorType =
  'usage' | 'auth' | 'missing' | 'method' | 'busy' | 'failed' | 'system' | 'full';

/** Statuses per type as the known clients map them (see the API notes, section 8). */
const STATUS: Record<ErrorType, number> = {
  usage: 400,
  auth: 401,
  missing: 404,
  method: 405,
  busy: 409,
  failed: 500,
  system: 500,
  full: 507,
};

export class EmulatorApiError extends Error {
  readonly status: number;
  /** A drive or server that does not exist (answered 400 system with the recorded quirk). */
  notFound = false;
  constructor(
    readonly type: ErrorType,
    message: string,
    status?: number,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status ?? STATUS[type];
  }
}

/** A drive or server that is not there (or another account's), in the service's words. */
export function notFound(object: 'Drive' | 'Server', uuid: string): EmulatorApiError {
  const error = new EmulatorApiError(
    'missing',
    `${object} ${uuid} could not be found. Please re-validate your entry.`,
  );
  error.notFound = true;
  return error;
}

export function driveMissing(uuid: string): EmulatorApiError {
  return notFound('Drive', uuid);
}

/** Header values must be one line of visible ASCII. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** The error body; callers send it after any injected latency. */
export function errorParts(error: EmulatorApiError): {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
} {
  const line = headerSafe(error.message);
  return {
    status: error.status,
    headers: {
      ...error.headers,
      'content-type': 'text/plain; charset=utf-8',
      'x-elastic-error': `${error.type} ${line}`,
    },
    body: Buffer.from(`errors:${error.type} ${line}\n`),
  };
}
