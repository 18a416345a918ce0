/**
 * The Proxmox upload call (POST .../storage/{storage}/upload): its privilege is checked
 * before the body is read, then the multipart body streams to a temporary file, paced
 * through the bandwidth caps, and an `imgcopy` task verifies the checksum and moves the
 * file into place, logging what Proxmox logs.
 */
import type { IncomingMessage } from 'node:http';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { has, type Caller } from './auth.js';
import { CHECKSUM_ALGORITHMS, multipartBoundary, receiveUpload, type Upload } from './multipart.js';
import { failure, paramError, PveError } from './pve-error.js';
import type { PveState } from './state.js';
import type { Storages } from './storage.js';

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

/** The upload call: the started task's UPID, or undefined when the connection was dropped. */
export async function upload(
  state: PveState,
  req: IncomingMessage,
  url: URL,
  parts: string[],
  caller: Caller,
): Promise<unknown> {
  const node = parts[1] ?? '';
  const storage = parts[3] ?? '';
  const boundary = admitUpload(state, req, { node, storage, caller });
  if (boundary === undefined) {
    req.socket.destroy(); // Proxmox dies while handling the headers: no answer at all
    return undefined;
  }
  const tmpFile = path.join(state.tmpDir, `pveupload-${process.pid}-${++state.uploadSeq}`);
  try {
    const up = await receive(state, req, boundary, tmpFile);
    for (const [k, v] of url.searchParams) if (k !== 'tmpfilename') up.fields[k] ??= v;
    if (url.searchParams.has('tmpfilename'))
      throw paramError({ tmpfilename: 'parameter is not allowed' });
    const name = checkUploadParams(up, state.storages, storage);
    state.stats.uploads += 1;
    return importTask(state, { up, tmpFile, node, storage, name, caller });
  } catch (error) {
    await rm(tmpFile, { force: true });
    throw error;
  }
}

/** Before the body: the node, the privilege and the encoding; the multipart boundary. */
function admitUpload(
  { nodes }: PveState,
  req: IncomingMessage,
  { node, storage, caller }: { node: string; storage: string; caller: Caller },
): string | undefined {
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
  return multipartBoundary(req.headers['content-type']);
}

/** The body, paced, into `tmpFile`. */
function receive(
  state: PveState,
  req: IncomingMessage,
  boundary: string,
  tmpFile: string,
): Promise<Upload> {
  const pacer = state.link.pacerFor(req.socket);
  return state.link.carry(() =>
    receiveUpload(
      req,
      boundary,
      tmpFile,
      (n) => (state.stats.uploadBytes += n),
      (n) => pacer.pass(n),
    ),
  );
}

/** The imgcopy task: checksum, then the file into place; the temporary file goes either way. */
function importTask(
  { tasks, storages }: PveState,
  o: {
    up: Upload;
    tmpFile: string;
    node: string;
    storage: string;
    name: string;
    caller: Caller;
  },
): unknown {
  const { up, tmpFile, node, storage, name } = o;
  const target = path.join(storages.isoDir(storage, node), name);
  return tasks.start(node, 'imgcopy', '', o.caller.id, async (log) => {
    try {
      log(`starting file import from: ${tmpFile}`);
      const expected = up.fields.checksum?.toLowerCase();
      if (expected !== undefined) {
        log(`validating checksum...`);
        if (up.digest !== expected) {
          throw new Error(`checksum mismatch: got '${up.digest ?? ''}' != expect '${expected}'`);
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
}
