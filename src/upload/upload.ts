/**
 * upload-drive: puts an image on a shared ElasticStack drive, sending only what the
 * drive lacks. Nothing is written until the image is checked, the drive found and
 * the image known to fit; then the drive is created or fixed, the planned chunks are
 * sent, a sample (or all) is read back, and what the drive now holds is recorded on it.
 */
import path from 'node:path';
import { DriveApi } from '../drive/api.js';
import { defaultRetryPolicy, type RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';
import { timedPhases, type Reporter, type StepReport } from '../report.js';
import { digestImage, imageIdentity, imageSize, type ImageDigests } from './image.js';
import { countersOf, defaultStateDir, openJournal } from './journal.js';
import type { UploadDriveOptions } from './options.js';
import { planUpload, type Plan } from './plan.js';
import { startProgress } from './progress.js';
import { encodeRecord, shortDigest } from './record.js';
import { checkFits, explainApiError, findTarget, prepareDrive, type Prepared } from './target.js';
import { emptyStats, sendChunks, type Transfer, type TransferStats } from './transfer.js';
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

export async function upload(
  o: UploadDriveOptions,
  reporter: Reporter,
  policy: RetryPolicy = defaultRetryPolicy,
): Promise<UploadResult> {
  const started = performance.now();
  const { seconds: phases, phase } = timedPhases(reporter);
  const size = await imageSize(o.image);
  const identity = await imageIdentity(o.image);
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
    // Hash the image while the drive is looked up (and created): disk and CPU vs network.
    const hashStarted = performance.now();
    const hashing = digestImage(o.image, size, o.chunkSize).then((d) => {
      phases.hash = (performance.now() - hashStarted) / 1000;
      return d;
    });
    hashing.catch(() => undefined); // awaited below; an early refusal must not leave it unhandled

    const target = await phase('find', 'Find the drive', () =>
      findTarget(api, { uuid: o.driveUuid, name: o.driveName }),
    ).catch((error: unknown) => {
      throw explainApiError(error, api);
    });
    const name = target.kind === 'existing' ? target.drive.name : target.name;
    if (target.kind === 'existing') {
      const d = target.drive;
      reporter.info(
        `drive ${d.uuid} "${d.name}", ${formatBytes(d.size)}, claim type ${d.claimType}${d.claimed ? `, attached: ${d.claimed}` : ''}`,
      );
      checkFits(size, o.image, d.size, d.uuid);
    } else {
      reporter.info(`no drive is named "${name}": it will be created`);
      checkFits(size, o.image, o.driveSize ?? size, `"${name}" (drive-size)`);
    }

    const preparing = o.dryRun
      ? undefined
      : phase('prepare', 'Prepare the drive', async () => {
          const p = await prepareDrive(
            api,
            target,
            { size: o.driveSize ?? size, claimType: o.claimType },
            policy,
          );
          if (p.created) {
            reporter.info(
              `created drive ${p.drive.uuid} "${p.drive.name}" of ${formatBytes(p.drive.size)}, claim type ${p.drive.claimType}`,
            );
          }
          if (!p.created && !p.claimTypeChanged)
            reporter.info('the drive is ready: nothing to change');
          if (p.claimTypeChanged) {
            reporter.warning(
              `drive ${p.drive.uuid}: claim type changed from ${p.claimTypeChanged.replace(' -> ', ' to ')}`,
            );
          }
          return p;
        });
    const [digests, prepared] = await Promise.all([hashing, preparing]);
    reporter.info(
      `${path.basename(o.image)}: ${size} bytes, ${digests.chunks.length} chunks of ${formatBytes(o.chunkSize)}, sha256 ${digests.sha256}`,
    );
    const stateDir = o.stateDir ?? defaultStateDir();
    const plan = await planUpload(
      target.kind === 'existing' ? target.drive : undefined,
      digests,
      stateDir,
    );
    reporter.info(
      plan.upToDate
        ? 'the drive already holds this image: up to date'
        : `${plan.source}: ${plan.todo.length} of ${digests.chunks.length} chunks to send (${formatBytes(plan.todoBytes)} before compression)`,
    );

    const result: UploadResult = {
      driveUuid: prepared?.drive.uuid ?? (target.kind === 'existing' ? target.drive.uuid : ''),
      driveName: name,
      created: prepared?.created ?? false,
      dryRun: o.dryRun,
      upToDate: plan.upToDate,
      claimTypeChanged: prepared?.claimTypeChanged,
      sha256: digests.sha256,
      imageBytes: size,
      chunksTotal: digests.chunks.length,
      chunksSkipped: digests.chunks.length - plan.todo.length,
      chunksVerified: 0,
      chunksRewritten: 0,
      resumed: plan.resumed,
      stats,
      seconds: 0,
      phases,
    };
    if (!prepared) {
      reporter.info(
        `dry run: would ${target.kind === 'existing' ? `update drive ${target.drive.uuid}` : `create drive "${name}" of ${formatBytes(o.driveSize ?? size)}`} and send ${plan.todo.length} chunks; nothing was written`,
      );
    } else {
      await write(o, reporter, phase, {
        api,
        policy,
        stats,
        digests,
        plan,
        prepared,
        stateDir,
        result,
        identity,
      });
    }
    result.seconds = (performance.now() - started) / 1000;
    return result;
  } finally {
    await api.close();
  }
}

/** Sends the plan, verifies, and records what the drive holds. */
async function write(
  o: UploadDriveOptions,
  reporter: Reporter,
  phase: <T>(key: string, title: string, work: () => Promise<T>) => Promise<T>,
  c: {
    api: DriveApi;
    policy: RetryPolicy;
    stats: TransferStats;
    digests: ImageDigests;
    plan: Plan;
    prepared: Prepared;
    stateDir: string;
    result: UploadResult;
    /** The image file's identity when it was hashed (imageIdentity). */
    identity: string;
  },
): Promise<void> {
  const { api, stats, digests, plan, result } = c;
  const uuid = c.prepared.drive.uuid;
  const transfer: Omit<Transfer, 'confirmed'> = {
    api,
    drive: uuid,
    image: o.image,
    digests,
    concurrency: o.concurrency,
    policy: c.policy,
    stats,
    onRetry: (index, error, attempt, delay) => {
      reporter.debug(`chunk ${index}: retry ${attempt} in ${delay} ms: ${errorMessage(error)}`);
    },
  };
  const journal =
    plan.todo.length > 0
      ? await openJournal(
          c.stateDir,
          {
            version: 2,
            drive: uuid,
            sha256: digests.sha256,
            chunkSize: o.chunkSize,
            basis: plan.basis,
            record: c.prepared.drive.meta['diskless-sha256'] ?? '',
            writes: countersOf(c.prepared.drive),
          },
          plan.resumed,
        )
      : undefined;
  if (journal) {
    await phase(
      'send',
      `Send ${plan.todo.length} chunks (${o.concurrency} at a time)`,
      async () => {
        const progress = startProgress(
          'upload',
          plan.todoBytes,
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
                await journal.confirm(i);
              },
            },
            plan.todo,
          );
        } finally {
          progress.stop();
        }
        reporter.info(
          `sent ${stats.chunksSent} chunks, ${stats.bytesSent} bytes on the wire (${stats.chunksCompressed} compressed), ${stats.retries} retries`,
        );
      },
    );
  }

  // The write counters are final once the writes are: ask for them while verifying, and
  // journal them, so a later run can tell whether anyone wrote to the drive since.
  const counters = plan.upToDate ? undefined : api.info(uuid);
  const seen = counters?.then((d) => journal?.seen(countersOf(d)));
  seen?.catch(() => undefined);
  const check = chunksToVerify(o.verify, plan.todo, digests.chunks.length);
  // A resumed run did not send what the interrupted one did: every such chunk is read back.
  const sending = new Set(plan.todo);
  const unsent =
    plan.resumed && o.verify !== 'full'
      ? digests.chunks.map((_, i) => i).filter((i) => !sending.has(i))
      : [];
  const sampled = check.filter((i) => !unsent.includes(i));
  if (check.length + unsent.length > 0) {
    const how = o.verify === 'full' ? 'whole' : 'one-piece';
    const total = sampled.length + unsent.length;
    await phase(
      'verify',
      `Verify ${total} chunks${how === 'whole' ? '' : unsent.length > 0 ? ` (${unsent.length} not sent by this run whole, a piece of the others)` : ' (a piece of each)'}`,
      async () => {
        let bad = [
          ...(await findMismatches(api, uuid, o.image, digests, sampled, o.concurrency, how)),
          ...(await findMismatches(api, uuid, o.image, digests, unsent, o.concurrency, 'whole')),
        ].sort((a, b) => a - b);
        if (bad.length > 0) {
          reporter.warning(
            `drive ${uuid}: chunks ${bad.join(', ')} differ from the image; rewriting them`,
          );
          result.chunksRewritten = bad.length;
          await sendChunks({ ...transfer, confirmed: () => Promise.resolve() }, bad);
          bad = await findMismatches(api, uuid, o.image, digests, bad, o.concurrency, 'whole');
          if (bad.length > 0) {
            throw new DisklessError(
              `drive ${uuid}: chunks ${bad.join(', ')} still differ from the image after rewriting them`,
            );
          }
        }
        result.chunksVerified = total;
        reporter.info(
          `verified ${total} chunks${result.chunksRewritten ? ` (${result.chunksRewritten} rewritten)` : ''}: the drive matches the image`,
        );
      },
    );
  }

  // The chunks were sent as read after hashing; a file replaced or rewritten since would
  // have put a mix of two images on the drive: never record that as this image.
  if ((await imageIdentity(o.image)) !== c.identity) {
    throw new DisklessError(
      `Image ${o.image} changed while it was being uploaded; build it again, then upload`,
    );
  }
  // An up-to-date drive keeps its record, unless verifying it rewrote chunks.
  if (!plan.upToDate || result.chunksRewritten > 0) {
    await phase('record', 'Record what the drive holds', async () => {
      // A rewrite during verification moved the counters on: ask again.
      await seen;
      const now = result.chunksRewritten > 0 || !counters ? await api.info(uuid) : await counters;
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
          size: digests.size,
          chunkSize: o.chunkSize,
          chunks: digests.chunks.map(shortDigest),
          writeRequests: now.writeRequests,
          writeBytes: now.writeBytes,
        }),
      );
      reporter.info(
        `recorded image ${digests.sha256.slice(0, 16)}... and ${digests.chunks.length} chunk digests on the drive`,
      );
    });
  }
  await journal?.remove();
}

function uploadReport(r: UploadResult): StepReport {
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
