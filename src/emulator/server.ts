/**
 * The emulator's HTTP server (node:http, no framework): authenticates, routes the drive
 * endpoints, injects the configured faults and paces bodies through the bandwidth caps.
 * Order per request: auth (401), route (404) and method (405), fault draw, body read
 * (a cut fault resets the connection here), injected error answers, the work itself,
 * latency, then the paced response. A valid raw write is written to the drive while its
 * body is read; every other body is read whole first.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { InputError } from '../errors.js';
import { EmulatorApiError, errorParts } from './api-error.js';
import { Link, type Pacer } from './bandwidth.js';
import { driveInfo, parseChanges, type DriveMeta } from './drive-fields.js';
import { DriveStore, type DriveWriter } from './drive-store.js';
import { FaultPicker } from './faults.js';
import { Imaging } from './imaging.js';
import {
  DEFAULT_IMAGING_BYTES_PER_SECOND,
  DEFAULT_MAX_WRITE_BYTES,
  MAX_READ_BYTES,
  type Emulator,
  type EmulatorOptions,
  type EmulatorStats,
  type Faults,
} from './options.js';
import { NO_CONTENT, rendered, type Reply } from './reply.js';
import { ConnectionCut, readBody } from './request-body.js';
import { routeName, routeRequest, type Route } from './routes.js';
import { serverCall } from './server-calls.js';
import { ServerStore } from './server-store.js';
import { parseFields, renderList, renderObject, renderObjects, wantsJson } from './wire-format.js';
import { closeHttpServer } from './serve.js';

const inflate = promisify(gunzip);
/** Bodies of the non-write calls (create, set) are small key-value sets. */
const MAX_FIELDS_BYTES = 1 << 20;

function checkOptions(o: EmulatorOptions): void {
  for (const a of o.accounts) {
    if (a.user === '' || /[:\s]/.test(a.user) || a.key === '') {
      throw new InputError(
        'accounts',
        `Invalid emulator account ${JSON.stringify(a.user)}: expected a user without ":" or spaces and a non-empty key`,
      );
    }
  }
  const max = o.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new InputError(
      'maxWriteBytes',
      `Invalid maxWriteBytes ${max}: expected a positive integer`,
    );
  }
  const rate = o.imagingBytesPerSecond ?? DEFAULT_IMAGING_BYTES_PER_SECOND;
  if (!(rate > 0)) {
    throw new InputError(
      'imagingBytesPerSecond',
      `Invalid imagingBytesPerSecond ${rate}: expected a positive number`,
    );
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
function contentEncoding(req: IncomingMessage): string {
  return (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
}

/** Resolves on 'drain', or on 'close' when the client went away (no drain will come). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  checkOptions(options);
  const maxWriteBytes = options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
  const keys = new Map(options.accounts.map((a) => [a.user, a.key]));
  const quirks = options.quirks ?? {};
  const store = await DriveStore.open(options.dataDir, options.fsync ?? false);
  const imaging = new Imaging(
    store,
    options.imagingBytesPerSecond ?? DEFAULT_IMAGING_BYTES_PER_SECOND,
  );
  const servers = await ServerStore.open(options.dataDir, store, imaging, options.runner);
  /** Drives with a write in progress (for the one-writer quirk). */
  const writing = new Set<string>();
  const picker = new FaultPicker(options.faults ?? {});
  const stats: EmulatorStats = {
    requests: 0,
    endpoints: {},
    statuses: {},
    faults: { error: 0, throttle: 0, busy: 0, cut: 0 },
    bytesReceived: 0,
    bytesSent: 0,
    bytesWritten: 0,
    connections: 0,
  };
  const link = new Link(() => ({
    link: picker.current.linkBytesPerSecond,
    connection: picker.current.connectionBytesPerSecond,
  }));
  const pacers = new WeakMap<Socket, Pacer>();
  const inflight = new Set<Promise<void>>();

  function pacerOf(req: IncomingMessage): Pacer {
    let pacer = pacers.get(req.socket);
    if (!pacer) {
      pacer = link.pacer();
      pacers.set(req.socket, pacer);
    }
    return pacer;
  }

  /** Sends a reply after the injected latency, its body paced through the caps. */
  async function send(req: IncomingMessage, res: ServerResponse, reply: Reply): Promise<void> {
    const latency = picker.current.latencyMs ?? 0;
    if (latency > 0) await sleep(latency);
    if (res.destroyed) return;
    stats.statuses[reply.status] = (stats.statuses[reply.status] ?? 0) + 1;
    res.writeHead(reply.status, { ...reply.headers, 'content-length': String(reply.body.length) });
    const pacer = pacerOf(req);
    const slice = pacer.sliceSize();
    if (!Number.isFinite(slice)) {
      stats.bytesSent += reply.body.length;
      res.end(reply.body);
      return;
    }
    await link.carry(async () => {
      // (a getter: the socket can go away while we wait)
      const gone = () => res.destroyed;
      for (let at = 0; at < reply.body.length && !gone(); at += slice) {
        const part = reply.body.subarray(at, at + slice);
        await pacer.pass(part.length);
        stats.bytesSent += part.length;
        // Waiting for 'drain' after every slice would lose an event-loop turn each time;
        // a few slices in the buffer keep memory bounded without that.
        if (!res.write(part) && res.writableLength > 4 * slice) await drained(res);
      }
    });
    res.end();
  }

  /**
   * A raw write that can go to the drive while its body arrives: a known length within
   * the limit, to an existing drive, inside it. Anything else is read whole and answered
   * by `work`, with its error if it has one.
   */
  async function streamedWrite(
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
  function infoOf(meta: DriveMeta, full: boolean) {
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
  function checkChangeable(user: string, uuid: string, what: 'write' | 'destroy'): void {
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

  async function work(
    req: IncomingMessage,
    user: string,
    route: Route,
    body: Buffer,
    writer: DriveWriter | undefined,
  ): Promise<Reply> {
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
                store.list(user).map((m) => infoOf(m, full)),
                json,
              ),
            )
          : rendered(renderObject(infoOf(store.get(user, route.uuid), full), json));
      }
      case 'create': {
        const changes = parseChanges(parseFields(body, req.headers['content-type']), 'create');
        const meta = await store.create(user, changes, quirks.serviceWrite ?? false);
        return rendered(renderObject(infoOf(meta, false), json));
      }
      case 'set': {
        const uuid = route.uuid ?? '';
        store.get(user, uuid); // 404 before 400: the drive must exist
        const changes = parseChanges(parseFields(body, req.headers['content-type']), 'set');
        // A new size changes the bytes a running server or a copy sees.
        if (changes.size !== undefined) checkChangeable(user, uuid, 'write');
        return rendered(renderObject(infoOf(await store.update(user, uuid, changes), false), json));
      }
      case 'destroy':
        checkChangeable(user, route.uuid ?? '', 'destroy');
        await store.destroy(user, route.uuid ?? '');
        return NO_CONTENT;
      case 'image': {
        const dest = route.uuid ?? '';
        store.get(user, route.source ?? ''); // both must exist: 404 first
        checkChangeable(user, dest, 'write');
        imaging.image(user, dest, route.source ?? '', route.conversion ?? 'none');
        return NO_CONTENT;
      }
      case 'read': {
        const offset = parseOffset(route.offset ?? '', 'offset');
        const size = parseOffset(route.size ?? '', 'size');
        if (size > MAX_READ_BYTES) {
          throw new EmulatorApiError(
            'usage',
            `Cannot read ${size} bytes at once: at most ${MAX_READ_BYTES} (4096 KiB)`,
          );
        }
        const data = await store.read(user, route.uuid ?? '', offset, size);
        return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: data };
      }
      case 'write': {
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
        const data = await decodeWrite(contentEncoding(req), body);
        await store.write(user, uuid, offset, data);
        stats.bytesWritten += data.length;
        return NO_CONTENT;
      }
    }
  }

  /** The bytes a write carries: the body as is, or inflated when gzip. */
  async function decodeWrite(encoding: string, body: Buffer): Promise<Buffer> {
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests += 1;
    let route: Route | undefined;
    let writingNow: string | undefined;
    try {
      const user = authenticate(req, keys);
      route = routeRequest(req.method ?? 'GET', req.url ?? '/');
      const isWrite = route.object === 'drives' && route.endpoint === 'write';
      if (isWrite) {
        const drive = store.get(user, route.uuid ?? '').drive;
        checkChangeable(user, drive, 'write');
        if (quirks.oneWriterPerDrive) {
          if (writing.has(drive)) {
            throw new EmulatorApiError(
              'busy',
              `Drive ${drive} has a write in progress: one writer at a time`,
            );
          }
          writing.add(drive);
          writingNow = drive;
        }
      }
      const fault = picker.pick(isWrite);
      const encoding = contentEncoding(req);
      const gzip = encoding.includes('gzip');
      const length = Number(req.headers['content-length'] ?? NaN);
      const writer =
        fault === undefined || fault === 'cut'
          ? await streamedWrite(user, route, encoding, length)
          : undefined;
      const body = await link
        .carry(() =>
          readBody(req, {
            pacer: pacerOf(req),
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
      if (fault !== undefined) stats.faults[fault] += 1;
      if (fault === 'error')
        throw new EmulatorApiError('system', 'Injected fault: internal error, please retry');
      if (fault === 'busy')
        throw new EmulatorApiError('busy', 'Injected fault: the drive is busy, please retry');
      if (fault === 'throttle') {
        const after = picker.current.retryAfterSeconds ?? 1;
        throw new EmulatorApiError(
          'busy',
          'Injected fault: too many requests, please slow down',
          429,
          {
            'retry-after': String(after),
          },
        );
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
          `Write refused: the body is over the ${maxWriteBytes}-byte limit`,
        );
      }
      await send(req, res, await work(req, user, route, body.data, writer));
    } catch (error) {
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
      if (api.notFound && quirks.notFoundAs400)
        api = new EmulatorApiError('system', api.message, 400);
      await send(req, res, errorParts(api));
    } finally {
      if (writingNow !== undefined) writing.delete(writingNow);
      const name = route ? routeName(route) : 'unknown';
      stats.endpoints[name] = (stats.endpoints[name] ?? 0) + 1;
    }
  }

  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    req.on('error', () => undefined); // resets surface through the body reader
    res.on('error', () => undefined);
    const done = handle(req, res).catch(() => {
      res.destroy();
    });
    inflight.add(done);
    void done.finally(() => inflight.delete(done));
  });
  server.on('connection', () => {
    stats.connections += 1;
  });

  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]: unknown[]) => {
      throw error;
    }),
  ]);
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/`,
    stats,
    setFaults(faults: Faults) {
      picker.set(faults);
    },
    close() {
      closing ??= (async () => {
        await closeHttpServer(server, inflight);
        await servers.close();
        await imaging.close();
        await store.flush();
      })();
      return closing;
    },
  };
}
