/**
 * The Proxmox VE emulator's HTTPS server (node:https, a certificate made at start):
 * authenticates the API token, reads the parameters, routes the call and answers in
 * Proxmox's envelope, `{"data": …}` on success and the status text plus
 * `{"data":null,"message":…}` on failure, closing the connection after an error. The
 * upload call is handled apart: its privilege is checked before the body is read,
 * then the body streams to a temporary file and an `imgcopy` task verifies the
 * checksum and moves the file into place.
 */
import { once } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../../errors.js';
import { authenticate, has, type Caller } from './auth.js';
import { CHECKSUM_ALGORITHMS, multipartBoundary, receiveUpload, type Upload } from './multipart.js';
import type { PveEmulator, PveEmulatorOptions, PveEmulatorStats, PveToken } from './options.js';
import { Link, type Pacer } from '../bandwidth.js';
import type { Socket } from 'node:net';
import { readParams } from './params.js';
import { errorBody, failure, paramError, PveError, statusText } from './pve-error.js';
import { isUpload, route, WithSiblings, type Context } from './routes.js';
import { Storages } from './storage.js';
import { Tasks } from './tasks.js';
import { makeSelfSigned } from './tls.js';
import { Vms } from './vms.js';
import { closeHttpServer } from '../serve.js';

const BASE = '/api2/json/';

function checkOptions(o: PveEmulatorOptions): void {
  for (const t of o.tokens) {
    if (!/^[^\s!@]+@[^\s!@]+![A-Za-z][A-Za-z0-9._-]*$/.test(t.id) || t.secret === '') {
      throw new InputError(
        'tokens',
        `Invalid emulator token ${JSON.stringify(t.id)}: expected user@realm!tokenid and a non-empty secret`,
      );
    }
  }
  for (const vm of o.vms ?? []) {
    if (!Number.isInteger(vm.vmid) || vm.vmid < 100) {
      throw new InputError('vms', `Invalid VMID ${vm.vmid}: expected an integer of 100 or more`);
    }
  }
}

/** The checks of the upload's parameters once the body is in (400s, then storage 500s). */
function checkUploadParams(up: Upload, storages: Storages, storage: string): string {
  const f = up.fields;
  const errors: Record<string, string> = {};
  if (f.content === undefined) errors.content = 'property is missing and it is not optional';
  else if (!['iso', 'vztmpl', 'import'].includes(f.content)) {
    errors.content = `value '${f.content}' does not have a value in the enumeration 'iso, vztmpl, import'`;
  }
  if (f.checksum !== undefined && f['checksum-algorithm'] === undefined) {
    errors['checksum-algorithm'] = "missing property required by 'checksum'";
  }
  if (f['checksum-algorithm'] !== undefined) {
    if (f.checksum === undefined)
      errors.checksum = "missing property required by 'checksum-algorithm'";
    if (!CHECKSUM_ALGORITHMS.includes(f['checksum-algorithm'])) {
      errors['checksum-algorithm'] =
        `value '${f['checksum-algorithm']}' does not have a value in the enumeration '${CHECKSUM_ALGORITHMS.join(', ')}'`;
    }
  }
  if (up.filename.length > 255) errors.filename = 'value may only be 255 characters long';
  if (Object.keys(errors).length > 0) throw paramError(errors);
  return storages.checkUpload(storage, f.content ?? '', up.filename);
}

export async function startPveEmulator(options: PveEmulatorOptions): Promise<PveEmulator> {
  checkOptions(options);
  const host = options.host ?? '127.0.0.1';
  const nodes = options.nodes ?? ['pve'];
  const tokens = new Map<string, PveToken>(options.tokens.map((t) => [t.id, t]));
  const authDelay = options.authFailureDelayMs ?? 3000;
  const tmpDir = path.join(options.dataDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const storages = new Storages(options.dataDir, options.storages ?? [{ id: 'local' }], nodes);
  await storages.init();
  const vms = new Vms(options.vms ?? [], nodes, storages, options.runner);
  await vms.init().catch(async (error: unknown) => {
    await vms.close();
    throw error;
  });
  const tasks = new Tasks(options.taskMs ?? 50);
  const stats: PveEmulatorStats = {
    requests: 0,
    statuses: {},
    uploadBytes: 0,
    uploads: 0,
    tasks: tasks.counts,
  };
  let uploadSeq = 0;
  const caps = options.link ?? {};
  const link = new Link(() => ({
    link: caps.linkBytesPerSecond,
    connection: caps.connectionBytesPerSecond,
  }));
  const pacers = new WeakMap<Socket, Pacer>();
  function pacerOf(req: IncomingMessage): Pacer {
    let pacer = pacers.get(req.socket);
    if (!pacer) {
      pacer = link.pacer();
      pacers.set(req.socket, pacer);
    }
    return pacer;
  }

  function send(res: ServerResponse, status: number, body: Buffer, text?: string): void {
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    if (text !== undefined) res.statusMessage = text;
    res.writeHead(status, {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': String(body.length),
      ...(status >= 400 ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  async function sendError(res: ServerResponse, error: PveError): Promise<void> {
    if (error.delayed) await sleep(authDelay);
    if (caps.latencyMs) await sleep(caps.latencyMs);
    if (res.destroyed) return;
    send(res, error.status, errorBody(error), statusText(error.message));
  }

  async function upload(
    req: IncomingMessage,
    url: URL,
    parts: string[],
    caller: Caller,
  ): Promise<unknown> {
    const node = parts[1] ?? '';
    const storage = parts[3] ?? '';
    if (!nodes.includes(node)) throw failure(`no such cluster node '${node}'`);
    if (!has(caller, 'Datastore.AllocateTemplate')) {
      throw new PveError(
        403,
        `Permission check failed (/storage/${storage}, Datastore.AllocateTemplate)`,
        undefined,
        true,
      );
    }
    if (req.headers['transfer-encoding'] !== undefined) {
      throw new PveError(501, 'chunked transfer encoding not supported');
    }
    const boundary = multipartBoundary(req.headers['content-type']);
    if (boundary === undefined) {
      req.socket.destroy(); // Proxmox dies while handling the headers: no answer at all
      return undefined;
    }
    const tmpFile = path.join(tmpDir, `pveupload-${process.pid}-${++uploadSeq}`);
    let up: Upload;
    try {
      const pacer = pacerOf(req);
      up = await link.carry(() =>
        receiveUpload(
          req,
          boundary,
          tmpFile,
          (n) => (stats.uploadBytes += n),
          (n) => pacer.pass(n),
        ),
      );
      for (const [k, v] of url.searchParams) if (k !== 'tmpfilename') up.fields[k] ??= v;
      if (url.searchParams.has('tmpfilename'))
        throw paramError({ tmpfilename: 'parameter is not allowed' });
      const name = checkUploadParams(up, storages, storage);
      stats.uploads += 1;
      const target = path.join(storages.isoDir(storage, node), name);
      return tasks.start(node, 'imgcopy', '', caller.id, async (log) => {
        try {
          log(`starting file import from: ${tmpFile}`);
          const expected = up.fields.checksum?.toLowerCase();
          if (expected !== undefined) {
            log(`validating checksum...`);
            if (up.digest !== expected) {
              throw new Error(
                `checksum mismatch: got '${up.digest ?? ''}' != expect '${expected}'`,
              );
            }
            log(`checksum verified`);
          }
          log(`target node: ${node}`);
          log(`target file: ${target}`);
          log(`file size is: ${up.size}`);
          log(`command: cp -- ${tmpFile} ${target}`);
          await storages.place(tmpFile, storage, node, name);
          log('finished file import successfully');
        } finally {
          await rm(tmpFile, { force: true });
        }
      });
    } catch (error) {
      await rm(tmpFile, { force: true });
      throw error;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests += 1;
    try {
      const url = new URL(req.url ?? '/', 'https://pve');
      if (!url.pathname.startsWith(BASE)) {
        throw new PveError(501, `Method '${req.method ?? 'GET'} ${url.pathname}' not implemented`);
      }
      let parts: string[];
      try {
        parts = url.pathname
          .slice(BASE.length)
          .split('/')
          .filter((p) => p !== '')
          .map(decodeURIComponent);
      } catch {
        throw paramError({ path: 'malformed URI escape' });
      }
      const caller = authenticate(req.headers.authorization, tokens);
      const method = req.method ?? 'GET';
      let data: unknown;
      if (method === 'POST' && isUpload(parts)) {
        data = await upload(req, url, parts, caller);
        if (res.destroyed) return;
      } else {
        const handler = route(method, parts);
        const params = await readParams(req, url);
        const context: Context = { caller, params, parts, nodes, storages, vms, tasks };
        data = await handler(context);
      }
      if (caps.latencyMs) await sleep(caps.latencyMs);
      if (res.destroyed) return;
      const envelope =
        data instanceof WithSiblings
          ? { data: data.data, ...data.siblings }
          : { data: data ?? null };
      send(res, 200, Buffer.from(JSON.stringify(envelope)));
    } catch (error) {
      if (res.headersSent || res.destroyed) return;
      if (error instanceof PveError) {
        await sendError(res, error);
        return;
      }
      if (req.destroyed) return; // the client went away mid-body
      await sendError(
        res,
        new PveError(
          500,
          `internal error: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
  }

  const tls = await makeSelfSigned(host);
  const inflight = new Set<Promise<void>>();
  const server: Server = createServer(
    { cert: tls.cert, key: tls.key, requestTimeout: 0 },
    (req, res) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      const done = handle(req, res).catch(() => {
        res.destroy();
      });
      inflight.add(done);
      void done.finally(() => inflight.delete(done));
    },
  );
  server.listen(options.port ?? 0, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]: unknown[]) => {
      throw error;
    }),
  ]);
  const address = server.address() as AddressInfo;
  const hostPort = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    url: `https://${hostPort}/api2/json`,
    hostPort,
    certificate: tls.cert,
    fingerprint: tls.fingerprint,
    stats,
    editConfig(vmid, changes) {
      vms.edit(vmid, changes);
    },
    close() {
      closing ??= (async () => {
        await closeHttpServer(server, inflight);
        await tasks.settle();
        await vms.close();
        await rm(tmpDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
