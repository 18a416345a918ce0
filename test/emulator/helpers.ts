/** Shared set-up for the emulator tests: a fresh data dir, two accounts, HTTP calls. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import {
  startEmulator,
  type Account,
  type Emulator,
  type EmulatorOptions,
} from '../../src/emulator/index.js';

export const alice: Account = { user: 'a1a1a1a1-0000-4000-8000-000000000001', key: 'alice-key' };
export const bob: Account = { user: 'b2b2b2b2-0000-4000-8000-000000000002', key: 'bob-key' };

export interface Started {
  emulator: Emulator;
  dataDir: string;
  /** Closes the emulator and removes its data dir. */
  stop(): Promise<void>;
}

export async function start(
  extra: Partial<EmulatorOptions> = {},
  dataDir?: string,
): Promise<Started> {
  const dir = dataDir ?? (await mkdtemp(path.join(tmpdir(), 'emulator-test-')));
  const emulator = await startEmulator({ dataDir: dir, accounts: [alice, bob], ...extra });
  return {
    emulator,
    dataDir: dir,
    async stop() {
      await emulator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: string | Buffer;
  headers?: Record<string, string>;
  as?: Account | null;
}

export function basic(a: Account): string {
  return `Basic ${Buffer.from(`${a.user}:${a.key}`).toString('base64')}`;
}

/** One API call (as alice unless `as` says otherwise; null sends no credentials). */
export async function call(e: Emulator, urlPath: string, o: CallOptions = {}): Promise<Answer> {
  const who = o.as === undefined ? alice : o.as;
  const res = await request(new URL(urlPath, e.url), {
    method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
    headers: { ...(who ? { authorization: basic(who) } : {}), ...o.headers },
    body: o.body,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    // decoded on demand: decoding MiBs of binary as UTF-8 is slow enough to skew timings
    get text() {
      return body.toString('utf8');
    },
  };
}

/** Parses a text `key value` block. */
export function properties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const space = line.indexOf(' ');
    out[space < 0 ? line : line.slice(0, space)] = space < 0 ? '' : line.slice(space + 1);
  }
  return out;
}

/** Creates a drive for `as` (alice by default) and returns its UUID. */
export async function createDrive(e: Emulator, body: string, as: Account = alice): Promise<string> {
  const r = await call(e, 'drives/create', { body, as });
  if (r.status !== 200) throw new Error(`create failed: ${r.status} ${r.text}`);
  const uuid = properties(r.text).drive;
  if (uuid === undefined) throw new Error(`create gave no drive: ${r.text}`);
  return uuid;
}
