/**
 * The drive endpoints: object + action in the path. Reads take GET or POST (the stock
 * CLI sends everything as POST); calls that change state take POST only (405 method).
 */
import { ApiError } from './api-error.js';

export type Endpoint = 'list' | 'info' | 'create' | 'set' | 'destroy' | 'read' | 'write';

export interface Route {
  endpoint: Endpoint;
  uuid?: string;
  offset?: string;
  size?: string;
}

const READS = new Set<Endpoint>(['list', 'info', 'read']);

function match(parts: string[]): Route | undefined {
  const [top, a, b, c, d, ...rest] = parts;
  if (top !== 'drives' || a === undefined || rest.length > 0) return undefined;
  if (b === undefined) {
    if (a === 'list' || a === 'create' || a === 'info') return { endpoint: a };
    return undefined;
  }
  if (a === 'info' && b === 'full' && c === undefined) return { endpoint: 'info' };
  if (b === 'info' && (c === undefined || (c === 'full' && d === undefined))) {
    return { endpoint: 'info', uuid: a };
  }
  if ((b === 'set' || b === 'destroy') && c === undefined) return { endpoint: b, uuid: a };
  if (b === 'read' && c !== undefined && d !== undefined) {
    return { endpoint: 'read', uuid: a, offset: c, size: d };
  }
  if (b === 'write' && d === undefined) return { endpoint: 'write', uuid: a, offset: c };
  return undefined;
}

export function routeRequest(method: string, url: string): Route {
  const pathname = new URL(url, 'http://emulator').pathname;
  let route: Route | undefined;
  try {
    route = match(
      pathname
        .split('/')
        .filter((p) => p !== '')
        .map(decodeURIComponent),
    );
  } catch {
    route = undefined; // malformed %-escapes
  }
  if (!route) throw new ApiError('missing', `No API call ${pathname} (only drives are emulated)`);
  const allowed = READS.has(route.endpoint) ? ['GET', 'POST'] : ['POST'];
  if (!allowed.includes(method)) {
    throw new ApiError(
      'method',
      `Method ${method} not allowed on ${pathname}: use ${allowed.join(' or ')}`,
      405,
      {
        allow: allowed.join(', '),
      },
    );
  }
  return route;
}
