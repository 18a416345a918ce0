/**
 * The work of each call once it is admitted and its body read: the drive calls here
 * (elastichosts-api.md section 4), the servers calls in server-calls.ts. A change of a
 * drive's bytes is refused while it is imaged or claimed.
 */
import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { EmulatorApiError } from './api-error.js';
import { driveInfo, parseChanges, type DriveMeta } from './drive-fields.js';
import type { DriveWriter } from './drive-store.js';
import { MAX_READ_BYTES } from './options.js';
import { NO_CONTENT, rendered, type Reply } from './reply.js';
import type { Route } from './routes.js';
import { serverCall } from './server-calls.js';
import type { EmulatorState } from './state.js';
import { parseFields, renderList, renderObject, renderObjects, wantsJson } from './wire-format.js';

const inflate = promisify(gunzip);

type DriveRoute = Extract<Route, { object: 'drives' }>;

function parseOffset(raw: string, what: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new EmulatorApiError(
      'usage',
      `Invalid ${what} ${JSON.stringify(raw)}: expected a number of bytes`,
    );
  }
  return n;
}

/** The request's Content-Encoding, normalised; `identity` when there is none. */
export function contentEncoding(req: IncomingMessage): string {
  return (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
}

/**
 * A raw write that can go to the drive while its body arrives: a known length within
 * the limit, to an existing drive, inside it. Anything else is read whole and answered
 * by `work`, with its error if it has one.
 */
export async function streamedWrite(
  { store, maxWriteBytes }: EmulatorState,
  user: string,
  route: Route,
  encoding: string,
  length: number,
): Promise<DriveWriter | undefined> {
  if (route.object !== 'drives' || route.endpoint !== 'write' || encoding !== 'identity') {
    return undefined;
  }
  if (!Number.isSafeInteger(length) || length > maxWriteBytes) return undefined;
  try {
    const offset = parseOffset(route.offset ?? '0', 'offset');
    return await store.writer(user, route.uuid ?? '', offset, length);
  } catch (error) {
    if (error instanceof EmulatorApiError) return undefined;
    throw error;
  }
}

/** A drive's info with its claims, imaging state and the quirks. */
function infoOf({ servers, imaging, quirks }: EmulatorState, meta: DriveMeta, full: boolean) {
  return driveInfo(
    meta,
    {
      claimed: [...servers.claimsOf(meta.drive), ...imaging.claimsOf(meta.drive)],
      imaging: imaging.state(meta.drive, full),
    },
    quirks,
  );
}

/**
 * Refuses a change of a drive's bytes (write, image onto it, destroy) while it is being
 * imaged, or while a running server claims it and it is exclusive (shared drives take
 * writes, as the real service presumably does; destroy is refused for both).
 */
export function checkChangeable(
  { store, imaging, servers }: EmulatorState,
  user: string,
  uuid: string,
  what: 'write' | 'destroy',
): void {
  const meta = store.get(user, uuid);
  if (imaging.busy(meta.drive)) {
    throw new EmulatorApiError(
      'busy',
      `Drive ${meta.drive} is being imaged: wait until it is done`,
    );
  }
  const claim = servers.claimsOf(meta.drive)[0];
  if (claim !== undefined && (what === 'destroy' || meta.claimType === 'exclusive')) {
    throw new EmulatorApiError(
      'busy',
      `Drive ${meta.drive} is claimed by ${claim}${what === 'write' ? ' and exclusive' : ''}: stop the server first`,
    );
  }
}

/** A drive or server call, once the request is admitted and its body read. */
export async function work(
  state: EmulatorState,
  req: IncomingMessage,
  user: string,
  route: Route,
  body: Buffer,
  writer: DriveWriter | undefined,
): Promise<Reply> {
  const { store, imaging, servers, quirks } = state;
  const json = wantsJson(req.headers.accept);
  if (route.object === 'servers') {
    return serverCall(
      servers,
      req,
      user,
      { endpoint: route.endpoint, uuid: route.uuid, start: route.start ?? false },
      body,
      quirks.omitDefaults ?? false,
    );
  }
  switch (route.endpoint) {
    case 'list':
      return rendered(
        renderList(
          'drive',
          store.list(user).map((d) => d.drive),
          json,
        ),
      );
    case 'info': {
      const full = route.full ?? false;
      return route.uuid === undefined
        ? rendered(
            renderObjects(
              store.list(user).map((m) => infoOf(state, m, full)),
              json,
            ),
          )
        : rendered(renderObject(infoOf(state, store.get(user, route.uuid), full), json));
    }
    case 'create': {
      const changes = parseChanges(parseFields(body, req.headers['content-type']), 'create');
      const meta = await store.create(user, changes, quirks.serviceWrite ?? false);
      return rendered(renderObject(infoOf(state, meta, false), json));
    }
    case 'set': {
      const uuid = route.uuid ?? '';
      store.get(user, uuid); // 404 before 400: the drive must exist
      const changes = parseChanges(parseFields(body, req.headers['content-type']), 'set');
      // A new size changes the bytes a running server or a copy sees.
      if (changes.size !== undefined) checkChangeable(state, user, uuid, 'write');
      return rendered(
        renderObject(infoOf(state, await store.update(user, uuid, changes), false), json),
      );
    }
    case 'destroy':
      checkChangeable(state, user, route.uuid ?? '', 'destroy');
      await store.destroy(user, route.uuid ?? '');
      return NO_CONTENT;
    case 'image': {
      const dest = route.uuid ?? '';
      store.get(user, route.source ?? ''); // both must exist: 404 first
      checkChangeable(state, user, dest, 'write');
      imaging.image(user, dest, route.source ?? '', route.conversion ?? 'none');
      return NO_CONTENT;
    }
    case 'read':
      return readCall(state, user, route);
    case 'write':
      return writeCall(state, req, user, route, body, writer);
  }
}

/** drives/{uuid}/read/{offset}/{size}: at most MAX_READ_BYTES at once. */
async function readCall(state: EmulatorState, user: string, route: DriveRoute): Promise<Reply> {
  const offset = parseOffset(route.offset ?? '', 'offset');
  const size = parseOffset(route.size ?? '', 'size');
  if (size > MAX_READ_BYTES) {
    throw new EmulatorApiError(
      'usage',
      `Cannot read ${size} bytes at once: at most ${MAX_READ_BYTES} (4096 KiB)`,
    );
  }
  const { data, release } = await state.store.read(user, route.uuid ?? '', offset, size);
  return {
    status: 200,
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
    release,
  };
}

/** drives/{uuid}/write[/{offset}]: streamed already (`writer`), else the body written now. */
async function writeCall(
  state: EmulatorState,
  req: IncomingMessage,
  user: string,
  route: DriveRoute,
  body: Buffer,
  writer: DriveWriter | undefined,
): Promise<Reply> {
  const { store, stats } = state;
  if (writer) {
    // (awaited first: "+= await" would add to a total read before the wait, losing
    // the bytes of writes that ended meanwhile)
    const written = await writer.end(); // the bytes went in as they came
    stats.bytesWritten += written;
    return NO_CONTENT;
  }
  const uuid = route.uuid ?? '';
  store.get(user, uuid);
  const offset = parseOffset(route.offset ?? '0', 'offset');
  const data = await decodeWrite(state.maxWriteBytes, contentEncoding(req), body);
  await store.write(user, uuid, offset, data);
  stats.bytesWritten += data.length;
  return NO_CONTENT;
}

/** The bytes a write carries: the body as is, or inflated when gzip. */
async function decodeWrite(maxWriteBytes: number, encoding: string, body: Buffer): Promise<Buffer> {
  if (encoding === 'identity') return body;
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw new EmulatorApiError(
      'usage',
      `Unsupported Content-Encoding ${JSON.stringify(encoding)}: expected gzip or none`,
    );
  }
  try {
    return await inflate(body, { maxOutputLength: maxWriteBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new EmulatorApiError(
        'usage',
        `Write refused: it inflates to more than ${maxWriteBytes} bytes`,
      );
    }
    throw new EmulatorApiError('usage', 'Write refused: the gzip body could not be inflated');
  }
}
