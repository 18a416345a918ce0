/**
 * Proxmox API failures as one line naming the call: the HTTP status and Proxmox's own
 * text (the `message` of newer servers, else the status text, which older PVE 8 sends
 * alone), with a 400's per-parameter errors. Only the network and gateway statuses are
 * worth another try: a 500 from Proxmox is a refusal (VM locked, digest mismatch), not
 * a passing fault.
 */
import { NetworkError } from '../drive/api-error.js';
import { DisklessError } from '../errors.js';

export class PveApiError extends DisklessError {
  override name = 'PveApiError';
  constructor(
    readonly status: number,
    /** Proxmox's text: the first line of its error message. */
    readonly detail: string,
    /** `METHOD url` of the call. */
    readonly request: string,
    readonly errors: Record<string, string> = {},
  ) {
    const params = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v.trim()}`)
      .join('; ');
    super(
      `${request}: HTTP ${status}${detail ? ` ${detail}` : ''}${params ? ` (${params})` : ''}`.replace(
        /\s*\n\s*/g,
        ' ',
      ),
    );
  }
}

/** Statuses of a proxy or a node that could not be reached (595/596 from pveproxy). */
const TRANSIENT_STATUSES = new Set([429, 502, 503, 504, 595, 596]);

export function isTransientPve(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  return error instanceof PveApiError && TRANSIENT_STATUSES.has(error.status);
}

export { NetworkError };
