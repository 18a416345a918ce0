/** An answer before it is sent: status, headers, body (paced by the server when sent). */
import type { Rendered } from './wire-format.js';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Called once the answer is sent or abandoned: the body's buffer may then be reused. */
  release?: () => void;
}

export const NO_CONTENT: Reply = { status: 204, headers: {}, body: Buffer.alloc(0) };

export function rendered(r: Rendered): Reply {
  return { status: 200, headers: r.headers, body: r.body };
}
