/**
 * Ships an ISO to a Proxmox storage as a new artifact, blue/green by file name:
 * `<family>-<sha8>.iso` next to the files in use, never over one a VM references.
 * Phases: hash the image, look at the storage (a file of that name and size is already
 * there: nothing is sent), send it in one streamed multipart request with its sha256,
 * so that Proxmox itself verifies what arrived, wait for the upload task (its failure
 * text is the error), and confirm the listing. One request is not resumable, so a
 * network failure retries the whole upload, with backoff.
 */
import { stat } from 'node:fs/promises';
import { defaultRetryPolicy, withRetry, type RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage, InputError } from '../errors.js';
import { sha256File } from '../files.js';
import { humanBytes, timedPhases, type Reporter } from '../report.js';
import { startProgress } from '../upload/progress.js';
import type { PveApi } from './api.js';
import { isTransientPve } from './api-error.js';
import { waitTask, type WaitOptions } from './tasks.js';
import { isosInUse } from './vms.js';

/** A family name survives Proxmox's file name normalisation unchanged. */
export const FAMILY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/;

export interface PveUploadOptions {
  image: string;
  /** The family: files are `<family>-<sha8>.iso`. */
  family: string;
  node: string;
  storage: string;
  dryRun: boolean;
  retry?: RetryPolicy;
  wait?: WaitOptions;
  /** Between progress lines (default 5 s). */
  progressMs?: number;
}

export interface PveUploadResult {
  /** `<storage>:iso/<file>`: what a VM's CD points at. */
  volid: string;
  filename: string;
  sha256: string;
  size: number;
  /** false: the file was already there (or a dry run), nothing was sent. */
  sent: boolean;
  dryRun: boolean;
  attempts: number;
  /** Seconds per phase: hash, look, send, confirm. */
  phases: Record<string, number>;
}

export function artifactName(family: string, sha256: string): string {
  return `${family}-${sha256.slice(0, 8)}.iso`;
}

interface ContentItem {
  volid: string;
  size: number | string;
  ctime?: number | string;
}

export async function listIsos(api: PveApi, node: string, storage: string): Promise<ContentItem[]> {
  return api.call<ContentItem[]>(
    'GET',
    `/nodes/${encodeURIComponent(node)}/storage/${encodeURIComponent(storage)}/content`,
    { content: 'iso' },
  );
}

/** The storage must exist on the node and hold ISOs. */
async function checkStorage(api: PveApi, node: string, storage: string): Promise<void> {
  const all = await api.call<{ storage: string; content?: string }[]>(
    'GET',
    `/nodes/${encodeURIComponent(node)}/storage`,
  );
  const s = all.find((x) => x.storage === storage);
  if (!s) {
    throw new DisklessError(
      `Storage ${JSON.stringify(storage)} is not on node ${JSON.stringify(node)} (or the token may not see it): expected one of ${all.map((x) => x.storage).join(', ') || 'none'}`,
    );
  }
  if (!(s.content ?? '').split(',').includes('iso')) {
    throw new DisklessError(
      `Storage ${JSON.stringify(storage)} does not hold ISO images (content: ${s.content ?? 'none'}): expected a storage with iso content`,
    );
  }
}

/**
 * What is there under the artifact's name: nothing (send), the same size (already
 * there: the name carries the sha256's start, and Proxmox verified the full sha256
 * when it was uploaded), or another size (a broken earlier try: sent again, unless a
 * VM's CD references it).
 */
async function look(
  api: PveApi,
  o: PveUploadOptions,
  volid: string,
  size: number,
): Promise<'absent' | 'present' | 'replace'> {
  const existing = (await listIsos(api, o.node, o.storage)).find((i) => i.volid === volid);
  if (!existing) return 'absent';
  if (Number(existing.size) === size) return 'present';
  const users = (await isosInUse(api)).get(volid);
  if (users) {
    throw new DisklessError(
      `${volid} on the storage has ${Number(existing.size)} bytes, not the image's ${size}, and VM ${users.join(', ')} references it: refusing to overwrite a file in use`,
    );
  }
  return 'replace';
}

async function send(
  api: PveApi,
  o: PveUploadOptions,
  filename: string,
  sha: string,
  size: number,
  reporter: Reporter,
): Promise<number> {
  let retries = 0;
  return withRetry(
    async (attempt) => {
      const progress = startProgress(
        `upload ${filename}`,
        size,
        (l) => {
          reporter.info(l);
        },
        () => retries,
        o.progressMs,
      );
      try {
        const upid = await api.uploadIso(
          o.node,
          o.storage,
          o.image,
          size,
          filename,
          { algorithm: 'sha256', value: sha },
          (n) => {
            progress.add(n);
          },
        );
        progress.stop();
        reporter.info(`sent ${humanBytes(size)}; Proxmox verifies the sha256 (task ${upid})`);
        await waitTask(api, upid, `upload of ${filename} to ${o.storage}`, o.wait);
        return attempt;
      } finally {
        progress.stop();
      }
    },
    o.retry ?? defaultRetryPolicy,
    (error, attempt, delay) => {
      retries++;
      reporter.warning(
        `upload attempt ${attempt} failed (${errorMessage(error)}); sending it again in ${delay} ms`,
      );
    },
    isTransientPve,
  );
}

export async function uploadIsoImage(
  api: PveApi,
  o: PveUploadOptions,
  reporter: Reporter,
): Promise<PveUploadResult> {
  if (!FAMILY.test(o.family)) {
    throw new InputError(
      'family',
      `Invalid family ${JSON.stringify(o.family)}: expected letters, digits, ".", "_" or "-" (the ISO is named <family>-<sha8>.iso)`,
    );
  }
  const { seconds: phases, phase } = timedPhases(reporter);
  const size = await stat(o.image).then(
    (s) => s.size,
    () => {
      throw new InputError(
        'image',
        `Invalid image ${JSON.stringify(o.image)}: no such file; expected the ISO to upload`,
      );
    },
  );
  const sha = await phase('hash', 'Hash the image', () => sha256File(o.image));
  const filename = artifactName(o.family, sha);
  const volid = `${o.storage}:iso/${filename}`;
  const state = await phase('look', `Look at ${o.storage} on ${o.node}`, async () => {
    await checkStorage(api, o.node, o.storage);
    return look(api, o, volid, size);
  });
  const result = { volid, filename, sha256: sha, size, dryRun: o.dryRun, phases };
  if (state === 'present') {
    reporter.info(`${volid} is already there (${humanBytes(size)}): nothing to send`);
    return { ...result, sent: false, attempts: 0 };
  }
  if (o.dryRun) {
    reporter.info(
      `dry run: would ${state === 'replace' ? 'replace the broken' : 'upload'} ${volid} (${humanBytes(size)})`,
    );
    return { ...result, sent: false, attempts: 0 };
  }
  if (state === 'replace')
    reporter.warning(`${volid} has another size (an interrupted upload?): sending it again`);
  const attempts = await phase('send', `Upload ${filename}`, () =>
    send(api, o, filename, sha, size, reporter),
  );
  await phase('confirm', 'Confirm the storage listing', async () => {
    const item = (await listIsos(api, o.node, o.storage)).find((i) => i.volid === volid);
    if (!item || Number(item.size) !== size) {
      throw new DisklessError(
        `${volid}: after the upload task ended OK the storage lists ${item ? `${Number(item.size)} bytes` : 'no such file'}, expected ${size}`,
      );
    }
  });
  return { ...result, sent: true, attempts };
}
