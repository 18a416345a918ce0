/**
 * One request, in the order the real service answers it: auth (401), route (404) and
 * method (405), the one-writer check, fault draw, body read (a cut fault resets the
 * connection here), injected error answers and refusals, the work itself, latency, then
 * the paced response. A valid raw write is written to the drive while its body is read;
 * every other body is read whole first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EmulatorApiError, errorParts } from './api-error.js';
import { checkChangeable, contentEncoding, streamedWrite, work } from './drive-calls.js';
import type { DriveWriter } from './drive-store.js';
import type { FaultKind } from './options.js';
import { ConnectionCut, readBody, type Body } from './request-body.js';
import { routeName, routeRequest, type Route } from './routes.js';
import { send } from './send.js';
import type { EmulatorState } from './state.js';

/** Bodies of the non-write calls (create, set) are small key-value sets. */
const MAX_FIELDS_BYTES = 1 << 20;

/** What is known of a request so far (for its counters and the one-writer set). */
interface Call {
  route?: Route;
  /** The drive this request holds the one-writer slot of. */
  writingNow?: string;
}

/** Answers one request; never throws for an answer the client can be given. */
export async function handle(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  state.stats.requests += 1;
  const call: Call = {};
  try {
    const { user, route, isWrite } = admit(state, req, call);
    const fault = state.picker.pick(isWrite);
    const { body, writer } = await receive(state, req, { user, route, isWrite, fault });
    refuse(state, req, { isWrite, fault, body });
    await send(state, req, res, await work(state, req, user, route, body.data, writer));
  } catch (error) {
    await answerError(state, req, res, error);
  } finally {
    if (call.writingNow !== undefined) state.writing.delete(call.writingNow);
    const name = call.route ? routeName(call.route) : 'unknown';
    state.stats.endpoints[name] = (state.stats.endpoints[name] ?? 0) + 1;
  }
}

/** The account a request's Basic credentials name, or a 401. */
function authenticate(req: IncomingMessage, keys: Map<string, string>): string {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  if (colon < 0 || keys.get(user) !== decoded.slice(colon + 1)) {
    throw new EmulatorApiError('auth', 'Authentication failed: check the API user and key', 401, {
      'www-authenticate': 'Basic realm="ElasticStack API"',
    });
  }
  return user;
}

/** auth, route and method; a write must find its drive changeable (and free, one writer). */
function admit(
  state: EmulatorState,
  req: IncomingMessage,
  call: Call,
): { user: string; route: Route; isWrite: boolean } {
  const user = authenticate(req, state.keys);
  const route = routeRequest(req.method ?? 'GET', req.url ?? '/');
  call.route = route;
  const isWrite = route.object === 'drives' && route.endpoint === 'write';
  if (isWrite) {
    const drive = state.store.get(user, route.uuid ?? '').drive;
    checkChangeable(state, user, drive, 'write');
    if (state.quirks.oneWriterPerDrive) {
      if (state.writing.has(drive)) {
        throw new EmulatorApiError(
          'busy',
          `Drive ${drive} has a write in progress: one writer at a time`,
        );
      }
      state.writing.add(drive);
      call.writingNow = drive;
    }
  }
  return { user, route, isWrite };
}

/** The body, paced (a raw write goes to the drive as it comes); a cut fault resets here. */
async function receive(
  state: EmulatorState,
  req: IncomingMessage,
  o: { user: string; route: Route; isWrite: boolean; fault: FaultKind | undefined },
): Promise<{ body: Body; writer: DriveWriter | undefined }> {
  const { stats, maxWriteBytes } = state;
  const { fault, isWrite } = o;
  const encoding = contentEncoding(req);
  const gzip = encoding.includes('gzip');
  const length = Number(req.headers['content-length'] ?? NaN);
  const writer =
    fault === undefined || fault === 'cut'
      ? await streamedWrite(state, o.user, o.route, encoding, length)
      : undefined;
  const body = await state.link
    .carry(() =>
      readBody(req, {
        pacer: state.link.pacerFor(req.socket),
        sink: writer && ((part) => writer.write(part)),
        // gzip of incompressible data is slightly larger than the data itself
        keep: isWrite
          ? gzip
            ? maxWriteBytes + (maxWriteBytes >> 6) + 65536
            : maxWriteBytes
          : MAX_FIELDS_BYTES,
        cutAfter:
          fault === 'cut'
            ? length > 0
              ? Math.ceil(length / 2)
              : Number.isNaN(length)
                ? 1
                : 0
            : undefined,
        onBytes: (n) => {
          stats.bytesReceived += n;
        },
      }),
    )
    .catch(async (error: unknown) => {
      if (error instanceof ConnectionCut) stats.faults.cut += 1;
      await writer?.end(); // a cut body: what arrived is on the drive, and counted
      throw error;
    });
  return { body, writer };
}

/** The injected error answers (counted), then a write without a length or over the limit. */
function refuse(
  state: EmulatorState,
  req: IncomingMessage,
  { isWrite, fault, body }: { isWrite: boolean; fault: FaultKind | undefined; body: Body },
): void {
  if (fault !== undefined) state.stats.faults[fault] += 1;
  if (fault === 'error')
    throw new EmulatorApiError('system', 'Injected fault: internal error, please retry');
  if (fault === 'busy')
    throw new EmulatorApiError('busy', 'Injected fault: the drive is busy, please retry');
  if (fault === 'throttle') {
    const after = state.picker.current.retryAfterSeconds ?? 1;
    throw new EmulatorApiError('busy', 'Injected fault: too many requests, please slow down', 429, {
      'retry-after': String(after),
    });
  }
  if (isWrite && req.headers['content-length'] === undefined) {
    throw new EmulatorApiError(
      'usage',
      'Write refused: a Content-Length is required (chunked bodies are not supported)',
    );
  }
  if (body.overLimit) {
    throw new EmulatorApiError(
      'usage',
      `Write refused: the body is over the ${state.maxWriteBytes}-byte limit`,
    );
  }
}

/** The error answer, when anyone is still listening for one. */
async function answerError(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
): Promise<void> {
  if (error instanceof ConnectionCut) return; // counted when it happened
  if (res.headersSent || res.destroyed) return;
  if (!(error instanceof EmulatorApiError)) {
    // The client disconnected mid-body, or a bug: answer if anyone is listening.
    if (req.destroyed) return;
  }
  let api =
    error instanceof EmulatorApiError
      ? error
      : new EmulatorApiError('system', 'Internal emulator error');
  // The recorded answer to a missing drive: 400 system, not 404 missing.
  if (api.notFound && state.quirks.notFoundAs400)
    api = new EmulatorApiError('system', api.message, 400);
  await send(state, req, res, errorParts(api));
}
