// Shared setup of the upload tests: an in-process emulator, images, and a reader.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { DriveApi } from '../../src/drive/api.js';
import { defaultRetryPolicy } from '../../src/drive/retry.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { closeHttpServer } from '../../src/emulator/serve.js';
import { readInputs } from '../../src/inputs/read.js';
import { recordingReporter } from '../../src/report.js';
import { uploadDriveInputs, type UploadDriveOptions } from '../../src/upload/options.js';
import { upload } from '../../src/upload/upload.js';
import { tempDir } from '../helpers/temp.js';

export const USER = '6a1d5c3e-0b7e-4f0e-9a57-1c2d3e4f5a6b';
export const KEY = 'emulator-key-that-must-never-show';
export const MiB = 2 ** 20;
/** Fast retries: the faults are injected, not real outages. */
export const fastRetries = {
  ...defaultRetryPolicy,
  baseDelayMs: 5,
  maxDelayMs: 50,
  maxRetryAfterMs: 100,
};

export function tmpDir(): Promise<string> {
  return tempDir('upload');
}

export async function emulator(
  dataDir?: string,
  extra: Partial<EmulatorOptions> = {},
): Promise<Emulator> {
  return startEmulator({
    dataDir: dataDir ?? (await tmpDir()),
    accounts: [{ user: USER, key: KEY }],
    ...extra,
  });
}

/** An ISO-like image: random data with a zero-filled region and a text region. */
export function isoLike(size: number): Buffer {
  const data = randomBytes(size);
  data.fill(0, Math.floor(size * 0.2), Math.floor(size * 0.5));
  data.fill('config text for the client ', Math.floor(size * 0.5), Math.floor(size * 0.6));
  return data;
}

export async function writeImage(data: Buffer, dir?: string): Promise<string> {
  const file = path.join(dir ?? (await tmpDir()), 'boot.iso');
  await writeFile(file, data);
  return file;
}

/**
 * The inputs with the test's API; mode in-place unless the test says otherwise (most
 * tests here are about writing one drive; standby.test.ts names its mode).
 */
export function options(url: string, raw: Record<string, string>): UploadDriveOptions {
  const all: Record<string, string> = {
    'api-url': url,
    'api-user': USER,
    'api-key': KEY,
    mode: 'in-place',
    ...raw,
  };
  return readInputs(uploadDriveInputs, (name) => all[name]);
}

export async function run(url: string, raw: Record<string, string>, lines: string[] = []) {
  return upload(
    options(url, raw),
    recordingReporter((l) => lines.push(l), { indent: true }),
    process.env,
    fastRetries,
  );
}

export function api(url: string): DriveApi {
  return new DriveApi({ url, user: USER, key: KEY, connections: 4 });
}

/** The first `size` bytes of a drive, read through the API. */
export async function readDrive(url: string, uuid: string, size: number): Promise<Buffer> {
  const client = api(url);
  try {
    const parts: Buffer[] = [];
    for (let at = 0; at < size; at += 4 * MiB)
      parts.push(await client.read(uuid, at, Math.min(4 * MiB, size - at)));
    return Buffer.concat(parts);
  } finally {
    await client.close();
  }
}

export interface Gate {
  url: string;
  held: Promise<void>;
  close: () => Promise<void>;
}

/**
 * A pass-through to the emulator at `target` that holds (never answers) the requests
 * `hold` picks; `held` resolves at the first one. It stops a real upload process at an
 * exact step: a timer polling the emulator's counters can wake too late on a busy machine,
 * after the step it waited for has passed.
 */
export async function gate(
  target: string,
  hold: (method: string, url: string) => boolean,
): Promise<Gate> {
  let first: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (first = resolve));
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    if (hold(req.method ?? '', req.url ?? '')) {
      first();
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}/`,
    held,
    close: () => closeHttpServer(server, new Set()),
  };
}

/**
 * Kills `child` (just spawned, talking to the API through `g`) with SIGKILL once the gate
 * holds a request, then closes the gate; the signal it ended by. Fails if it ends first.
 */
export async function killWhenHeld(child: ChildProcess, g: Gate): Promise<NodeJS.Signals | null> {
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const first = await Promise.race([g.held.then(() => 'held'), exited.then(() => 'ended')]);
  if (first === 'ended') throw new Error('the upload ended before the gate held a request');
  child.kill('SIGKILL');
  const [, signal] = await exited;
  await g.close();
  return signal;
}
