/**
 * upload-drive: puts an image on a shared ElasticStack drive, sending only what the
 * drive lacks. Phases: check the image and find the drive (nothing written yet), hash
 * the image, decide what to send (drive record, resume journal, fresh-drive zeros),
 * create or fix the drive, send, verify, and record what the drive now holds.
 */
import path from 'node:path';
import { DriveApi, type DriveInfo } from '../drive/api.js';
import { defaultRetryPolicy, type RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';
import type { Reporter, StepReport } from '../report.js';
import { chunkCount, digestImage, imageSize, type ImageDigests } from './image.js';
import { defaultStateDir, findJournal, openJournal, type Journal } from './journal.js';
import type { UploadDriveOptions } from './options.js';
import { startProgress } from './progress.js';
import { encodeRecord, shortDigest, trustedRecord } from './record.js';
import { checkFits, createDrive, explainApiError, findTarget } from './target.js';
import { emptyStats, sendChunks, type TransferStats } from './transfer.js';
import { chunksToVerify, findMismatches } from './verify.js';

export interface UploadResult {
  driveUuid: string;
  driveName: string;
  created: boolean;
  dryRun: boolean;
  upToDate: boolean;
  claimTypeChanged: string | undefined;
  sha256: string;
  imageBytes: number;
  chunksTotal: number;
  chunksSkipped: number;
  chunksVerified: number;
  chunksRewritten: number;
  resumed: boolean;
  stats: TransferStats;
  seconds: number;
  /** Seconds per phase: find, hash, prepare, send, verify, record. */
  phases: Record<string, number>;
}

/** What the drive holds before this run, as short digests per chunk ('' = unknown). */
function basisOf(
  drive: DriveInfo | undefined,
  d: ImageDigests,
): { basis: string[]; source: string } {
  const unknown = () => d.chunks.map(() => '');
  if (!drive)
    return {
      basis: d.chunks.map((_, i) => (d.zero[i] ? shortDigest(d.chunks[i] ?? '') : '')),
      source: 'new drive (zeros)',
    };
  const record = trustedRecord(drive);
  if (!record) {
    const why = drive.meta['diskless-sha256']
      ? 'written since the last upload'
      : 'no upload record';
    return { basis: unknown(), source: `drive ${why}: sending everything` };
  }
  if (record.chunkSize !== d.chunkSize)
    return { basis: unknown(), source: 'record has another chunk size' };
  return { basis: d.chunks.map((_, i) => record.chunks[i] ?? ''), source: 'upload record' };
}

export async function upload(
  o: UploadDriveOptions,
  reporter: Reporter,
  policy: RetryPolicy = defaultRetryPolicy,
): Promise<UploadResult> {
  const started = performance.now();
  const phases: Record<string, number> = {};
  /** A log group that also times itself. */
  const phase = async <T>(key: string, title: string, work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await reporter.group(title, work);
    } finally {
      phases[key] = (phases[key] ?? 0) + (performance.now() - t) / 1000;
    }
  };
  const size = await imageSize(o.image);
  const stats = emptyStats();
  const api = new DriveApi({
    url: o.apiUrl,
    user: o.apiUser,
    key: o.apiKey,
    connections: o.concurrency,
    retry: policy,
    onRetry: (error, attempt, delay) => {
      reporter.debug(`retry ${attempt} in ${delay} ms: ${errorMessage(error)}`);
    },
  });
  try {
    // Hash the image while the drive is looked up: one is disk and CPU, the other network.
    const hashStarted = performance.now();
    const hashing = digestImage(o.image, size, o.chunkSize);
    hashing.catch(() => undefined); // awaited below; do not let an early refusal leave it unhandled
    const target = await phase('find', 'Find the drive', () =>
      findTarget(api, { uuid: o.driveUuid, name: o.driveName }),
    ).catch((error: unknown) => {
      throw explainApiError(error, api);
    });
    const existing = target.kind === 'existing' ? target.drive : undefined;
    if (existing) {
      reporter.info(
        `drive ${existing.uuid} "${existing.name}", ${formatBytes(existing.size)}, claim type ${existing.claimType}${existing.claimed ? `, attached: ${existing.claimed}` : ''}`,
      );
      checkFits(size, o.image, existing.size, existing.uuid);
    } else {
      reporter.info(`no drive is named "${o.driveName ?? ''}": it will be created`);
      checkFits(size, o.image, o.driveSize ?? size, `"${o.driveName ?? ''}" (drive-size)`);
    }

    const digests = await hashing;
    phases.hash = (performance.now() - hashStarted) / 1000;
    reporter.info(
      `${path.basename(o.image)}: ${size} bytes, ${digests.chunks.length} chunks of ${formatBytes(o.chunkSize)}, sha256 ${digests.sha256}`,
    );
    const total = chunkCount(size, o.chunkSize);
    const stateDir = o.stateDir ?? defaultStateDir();

    let { basis, source } = basisOf(existing, digests);
    const record = existing ? trustedRecord(existing) : undefined;
    const upToDate = !!record && record.sha256 === digests.sha256 && record.size === size;
    let done = new Set<number>();
    let resumed = false;
    if (existing && !upToDate) {
      const journal = await findJournal(stateDir, existing.uuid, digests.sha256, o.chunkSize);
      if (journal) {
        ({ basis } = journal.header);
        done = journal.done;
        resumed = true;
        source = `resuming an interrupted upload (${done.size} chunks already confirmed)`;
      }
    }
    const todo = upToDate
      ? []
      : digests.chunks.flatMap((digest, i) =>
          done.has(i) || basis[i] === shortDigest(digest) ? [] : [i],
        );
    const todoBytes = todo.reduce(
      (sum, i) => sum + Math.min(o.chunkSize, size - i * o.chunkSize),
      0,
    );
    reporter.info(
      upToDate
        ? 'the drive already holds this image: up to date'
        : `${source}: ${todo.length} of ${total} chunks to send (${formatBytes(todoBytes)} before compression)`,
    );

    const result: UploadResult = {
      driveUuid: existing?.uuid ?? '',
      driveName: existing?.name ?? o.driveName ?? '',
      created: false,
      dryRun: o.dryRun,
      upToDate,
      claimTypeChanged: undefined,
      sha256: digests.sha256,
      imageBytes: size,
      chunksTotal: total,
      chunksSkipped: total - todo.length,
      chunksVerified: 0,
      chunksRewritten: 0,
      resumed,
      stats,
      seconds: 0,
      phases,
    };
    if (o.dryRun) {
      reporter.info(
        `dry run: would ${existing ? `update drive ${existing.uuid}` : `create drive "${o.driveName ?? ''}" of ${formatBytes(o.driveSize ?? size)}`} and send ${todo.length} chunks; nothing was written`,
      );
      result.seconds = (performance.now() - started) / 1000;
      return result;
    }

    let drive = existing;
    await phase('prepare', 'Prepare the drive', async () => {
      if (!drive) {
        drive = await createDrive(
          api,
          { name: o.driveName ?? '', size: o.driveSize ?? size, claimType: o.claimType },
          policy,
        );
        result.created = true;
        result.driveUuid = drive.uuid;
        reporter.info(
          `created drive ${drive.uuid} "${drive.name}" of ${formatBytes(drive.size)}, claim type ${drive.claimType}`,
        );
      } else if (drive.claimType !== o.claimType) {
        result.claimTypeChanged = `${drive.claimType} -> ${o.claimType}`;
        drive = await api.set(drive.uuid, { 'claim:type': o.claimType });
        reporter.warning(
          `drive ${drive.uuid}: claim type changed from ${result.claimTypeChanged.replace(' -> ', ' to ')}`,
        );
      }
    });
    const uuid = drive?.uuid ?? '';

    const transfer = {
      api,
      drive: uuid,
      image: o.image,
      digests,
      concurrency: o.concurrency,
      policy,
      stats,
      onRetry: (index: number, error: unknown, attempt: number, delay: number) => {
        reporter.debug(`chunk ${index}: retry ${attempt} in ${delay} ms: ${errorMessage(error)}`);
      },
    };
    let journal: Journal | undefined;
    if (todo.length > 0) {
      journal = await openJournal(
        stateDir,
        { version: 1, drive: uuid, sha256: digests.sha256, chunkSize: o.chunkSize, basis },
        done,
        resumed,
      );
      const j = journal;
      await phase('send', `Send ${todo.length} chunks (${o.concurrency} at a time)`, async () => {
        const progress = startProgress(
          'upload',
          todoBytes,
          (line) => {
            reporter.info(line);
          },
          () => stats.retries,
        );
        try {
          await sendChunks(
            {
              ...transfer,
              confirmed: async (i, bytes) => {
                progress.add(bytes);
                await j.confirm(i);
              },
            },
            todo,
          );
        } finally {
          progress.stop();
        }
        reporter.info(
          `sent ${stats.chunksSent} chunks, ${stats.bytesSent} bytes on the wire (${stats.chunksCompressed} compressed), ${stats.retries} retries`,
        );
      });
    }

    // Read back: the chunks sent (sample) or all of them (full); a mismatch is rewritten.
    const check = chunksToVerify(o.verify, todo, total);
    if (check.length > 0) {
      await phase(
        'verify',
        `Verify ${check.length} chunks${o.verify === 'full' ? '' : ' (a 1 MiB piece of each)'}`,
        async () => {
          let bad = await findMismatches(
            api,
            uuid,
            o.image,
            digests,
            check,
            o.concurrency,
            o.verify === 'full' ? 'whole' : 'one-piece',
          );
          if (bad.length > 0) {
            reporter.warning(
              `drive ${uuid}: chunks ${bad.join(', ')} differ from the image; rewriting them`,
            );
            result.chunksRewritten = bad.length;
            await sendChunks({ ...transfer, confirmed: () => Promise.resolve() }, bad);
            bad = await findMismatches(api, uuid, o.image, digests, bad, o.concurrency);
            if (bad.length > 0) {
              throw new DisklessError(
                `drive ${uuid}: chunks ${bad.join(', ')} still differ from the image after rewriting them`,
              );
            }
          }
          result.chunksVerified = check.length;
          reporter.info(
            `verified ${check.length} chunks${result.chunksRewritten ? ` (${result.chunksRewritten} rewritten)` : ''}: the drive matches the image`,
          );
        },
      );
    }

    if (!upToDate || stats.chunksSent > 0) {
      // Record what the drive holds now, with its counters, so the next run can trust it.
      await phase('record', 'Record what the drive holds', async () => {
        const now = await api.info(uuid);
        if (now.writeRequests === undefined || now.writeBytes === undefined) {
          reporter.warning(
            'the API reports no write counters: the next upload will send every chunk',
          );
          return;
        }
        await api.set(
          uuid,
          encodeRecord({
            sha256: digests.sha256,
            size,
            chunkSize: o.chunkSize,
            chunks: digests.chunks.map(shortDigest),
            writeRequests: now.writeRequests,
            writeBytes: now.writeBytes,
          }),
        );
        reporter.info(
          `recorded image ${digests.sha256.slice(0, 16)}... and ${total} chunk digests on the drive`,
        );
      });
    }
    await journal?.remove();
    result.seconds = (performance.now() - started) / 1000;
    return result;
  } finally {
    await api.close();
  }
}

export function uploadReport(r: UploadResult): StepReport {
  const send = r.phases.send ?? 0;
  const mbps = send > 0 ? (r.stats.bytesSent / send / 1e6).toFixed(1) : '-';
  const state = r.dryRun
    ? 'dry run: nothing written'
    : r.created
      ? 'created'
      : r.upToDate
        ? 'up to date'
        : 'updated';
  return {
    outputs: {
      'drive-uuid': r.driveUuid,
      created: r.created,
      'up-to-date': r.upToDate,
      'bytes-sent': r.stats.bytesSent,
      'chunks-total': r.chunksTotal,
      'chunks-sent': r.stats.chunksSent,
      'chunks-skipped': r.chunksSkipped,
      'chunks-retried': r.stats.retries,
      'chunks-verified': r.chunksVerified,
      sha256: r.sha256,
      duration: r.seconds.toFixed(2),
      'send-seconds': send.toFixed(2),
      throughput: mbps,
    },
    summary: [
      ['Drive', `${r.driveName} (${r.driveUuid || 'to be created'})`],
      [
        'Result',
        `${state}${r.resumed ? ', resumed' : ''}${r.claimTypeChanged ? `, claim type ${r.claimTypeChanged}` : ''}`,
      ],
      ['Image', `${r.imageBytes} bytes, sha256 ${r.sha256}`],
      ['Bytes on the wire', `${r.stats.bytesSent} (${r.stats.chunksCompressed} chunks compressed)`],
      [
        'Chunks sent / skipped / total',
        `${r.stats.chunksSent} / ${r.chunksSkipped} / ${r.chunksTotal}`,
      ],
      ['Retries', String(r.stats.retries)],
      [
        'Verified chunks',
        `${r.chunksVerified}${r.chunksRewritten ? ` (${r.chunksRewritten} rewritten)` : ''}`,
      ],
      ['Throughput while sending', `${mbps} MB/s`],
      [
        'Time per phase',
        Object.entries(r.phases)
          .map(([k, v]) => `${k} ${v.toFixed(2)} s`)
          .join(', '),
      ],
      ['Duration', `${r.seconds.toFixed(1)} s`],
    ],
  };
}

/** The step as the action and the CLI run it. */
export async function uploadDrive(
  options: UploadDriveOptions,
  reporter: Reporter,
): Promise<StepReport> {
  return uploadReport(await upload(options, reporter));
}
