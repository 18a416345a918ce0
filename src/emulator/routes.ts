/**
 * The endpoints of drives and servers: object + action in the path. Reads take GET or
 * POST (the stock CLI sends everything as POST); calls that change state take POST only
 * (405 method).
 */
import { EmulatorApiError } from './api-error.js';

export type DriveEndpoint =
  'list' | 'info' | 'create' | 'set' | 'destroy' | 'read' | 'write' | 'image';
export type ServerAction = 'start' | 'stop' | 'shutdown' | 'reset' | 'destroy';
export type ServerEndpoint = 'list' | 'info' | 'create' | 'set' | ServerAction;
/** How the image call converts the source: as is, gzip or gunzip. */
export type Conversion = 'none' | 'gzip' | 'gunzip';

export type Route =
  | {
      object: 'drives';
      endpoint: DriveEndpoint;
      uuid?: string;
      offset?: string;
      size?: string;
      /** info/full: imaging as a percentage. */
      full?: boolean;
      /** image: the source drive and the conversion. */
      source?: string;
      conversion?: Conversion;
    }
  | {
      object: 'servers';
      endpoint: ServerEndpoint;
      uuid?: string;
      /** create: false for create/stopped. */
      start?: boolean;
    };

/** The name a route is counted under in the stats: drive calls bare, servers/<action>. */
export function routeName(route: Route): string {
  return route.object === 'drives' ? route.endpoint : `servers/${route.endpoint}`;
}

const READS = new Set<string>(['list', 'info', 'read']);
const SERVER_ACTIONS = new Set<string>(['set', 'start', 'stop', 'shutdown', 'reset', 'destroy']);

function matchDrive(parts: string[]): Route | undefined {
  const [a, b, c, d, e, ...rest] = parts;
  if (a === undefined || rest.length > 0) return undefined;
  const drive = (endpoint: DriveEndpoint, more: Partial<Route> = {}): Route =>
    ({ object: 'drives', endpoint, ...more }) as Route;
  if (b === undefined) {
    if (a === 'list' || a === 'create' || a === 'info') return drive(a);
    return undefined;
  }
  if (a === 'info' && b === 'full' && c === undefined) return drive('info', { full: true });
  if (b === 'info' && (c === undefined || (c === 'full' && d === undefined))) {
    return drive('info', { uuid: a, full: c === 'full' });
  }
  if ((b === 'set' || b === 'destroy') && c === undefined) return drive(b, { uuid: a });
  if (b === 'read' && c !== undefined && d !== undefined && e === undefined) {
    return drive('read', { uuid: a, offset: c, size: d });
  }
  if (b === 'write' && d === undefined) return drive('write', { uuid: a, offset: c });
  if (b === 'image' && c !== undefined && e === undefined) {
    if (d !== undefined && d !== 'gzip' && d !== 'gunzip') return undefined;
    return drive('image', { uuid: a, source: c, conversion: d ?? 'none' });
  }
  return undefined;
}

function matchServer(parts: string[]): Route | undefined {
  const [a, b, c, ...rest] = parts;
  if (a === undefined || rest.length > 0) return undefined;
  if (a === 'list' && b === undefined) return { object: 'servers', endpoint: 'list' };
  if (a === 'info' && (b === undefined || (b === 'full' && c === undefined))) {
    return { object: 'servers', endpoint: 'info' };
  }
  if (a === 'create' && (b === undefined || (b === 'stopped' && c === undefined))) {
    return { object: 'servers', endpoint: 'create', start: b === undefined };
  }
  if (b === 'info' && (c === undefined || c === 'full')) {
    return { object: 'servers', endpoint: 'info', uuid: a };
  }
  if (b !== undefined && SERVER_ACTIONS.has(b) && c === undefined) {
    return { object: 'servers', endpoint: b as ServerEndpoint, uuid: a };
  }
  return undefined;
}

export function routeRequest(method: string, url: string): Route {
  const pathname = new URL(url, 'http://emulator').pathname;
  let route: Route | undefined;
  try {
    const [top, ...parts] = pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    route =
      top === 'drives' ? matchDrive(parts) : top === 'servers' ? matchServer(parts) : undefined;
  } catch {
    route = undefined; // malformed %-escapes
  }
  if (!route) {
    throw new EmulatorApiError(
      'missing',
      `No API call ${pathname} (drives and servers are emulated)`,
    );
  }
  const allowed = READS.has(route.endpoint) ? ['GET', 'POST'] : ['POST'];
  if (!allowed.includes(method)) {
    throw new EmulatorApiError(
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
