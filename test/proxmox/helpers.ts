/** Shared set-up for the Proxmox client tests: the emulator, a client trusting its certificate, reporters. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RetryPolicy } from '../../src/drive/retry.js';
import { PveApi } from '../../src/proxmox/index.js';
import type { PveTls } from '../../src/proxmox/tls.js';
import { root, startPve, type StartedPve } from '../emulator/pve-helpers.js';

export { root, startPve, type StartedPve };

export const fastRetry: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 10,
  maxDelayMs: 50,
  maxRetryAfterMs: 100,
};
export const fastWait = { pollMs: 10, timeoutMs: 20_000 };

/** A client of the emulator that trusts its certificate through a pinned fingerprint (or `tls`). */
export function client(s: StartedPve, tls?: PveTls, url = s.emulator.url): PveApi {
  return new PveApi({
    url,
    tokenId: root.id,
    secret: root.secret,
    tls: tls ?? { fingerprint: s.emulator.fingerprint },
  });
}

/** An ISO-like file of `size` bytes whose content depends on `seed`. */
export async function isoFile(dir: string, name: string, size: number, seed = 1): Promise<string> {
  const file = path.join(dir, name);
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) data.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  await writeFile(file, data);
  return file;
}
