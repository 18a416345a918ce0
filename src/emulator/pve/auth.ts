/**
 * API tokens as pveproxy checks them: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`
 * (a space may replace the first `=`, the value is URI-unescaped and split at its last
 * `=`); 401 `No ticket` without credentials, `Authentication failed!` with wrong ones.
 * Privileges: a token either has all, or the listed ones on every path.
 */
import { PveError } from './pve-error.js';
import type { PveToken } from './options.js';

export interface Caller {
  /** `user@realm!tokenid`. */
  id: string;
  privileges: Set<string> | undefined;
}

export function authenticate(header: string | undefined, tokens: Map<string, PveToken>): Caller {
  const m = /^PVEAPIToken[= ](.+)$/.exec(header ?? '');
  if (!m) throw new PveError(401, 'No ticket', undefined, true);
  let value: string;
  try {
    value = decodeURIComponent(m[1] ?? '');
  } catch {
    value = m[1] ?? '';
  }
  const eq = value.lastIndexOf('=');
  const token = eq > 0 ? tokens.get(value.slice(0, eq)) : undefined;
  if (!token || token.secret !== value.slice(eq + 1)) {
    throw new PveError(401, 'Authentication failed!', undefined, true);
  }
  return { id: token.id, privileges: token.privileges && new Set(token.privileges) };
}

/** Whether the caller has `privilege` (on any path: privileges are not per path here). */
export function has(caller: Caller, privilege: string): boolean {
  return caller.privileges === undefined || caller.privileges.has(privilege);
}

/** 403 `Permission check failed (<path>, <privilege>)` unless the caller has one of them. */
export function need(caller: Caller, aclPath: string, ...privileges: string[]): void {
  if (privileges.some((p) => has(caller, p))) return;
  throw new PveError(403, `Permission check failed (${aclPath}, ${privileges.join('|')})`);
}
