/**
 * Errors in Proxmox's shape: the HTTP status, a status text equal to the message's
 * first line, and a body `{"data":null,"message":"<msg>\n"}` with a per-parameter
 * `errors` map on 400 (proxmox-api.md section 2). proxmoxer reads only the status text.
 */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
    /** Answered after the auth-failure delay with an empty body (401s, the upload's 403). */
    readonly delayed = false,
  ) {
    super(message);
  }
}

/** 400 `Parameter verification failed.` with its errors map. */
export function paramError(errors: Record<string, string>): PveError {
  return new PveError(400, 'Parameter verification failed.', errors);
}

/** 500: any other failure. */
export function failure(message: string): PveError {
  return new PveError(500, message);
}

/** 403 `Permission check failed (<path>, <priv>)`. */
export function permissionError(aclPath: string, privilege: string): PveError {
  return new PveError(403, `Permission check failed (${aclPath}, ${privilege})`);
}

/** A status text: one line of visible ASCII. */
export function statusText(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 400);
}

/** The body of an error answer (empty for the delayed ones, as Proxmox sends). */
export function errorBody(error: PveError): Buffer {
  if (error.delayed) return Buffer.alloc(0);
  return Buffer.from(
    JSON.stringify({
      data: null,
      message: `${error.message}\n`,
      ...(error.errors ? { errors: error.errors } : {}),
    }),
  );
}
