/**
 * upload-drive: puts an image on an ElasticStack drive, sending only what the drive
 * lacks. Nothing is written until the image is checked, the drive found and the image
 * known to fit. Standby mode (standby.ts, the default) writes a new drive per image and
 * never one a server runs from; in-place mode (here, the 2011 way) creates or fixes one
 * drive, sends the planned chunks, reads a sample (or all) back, and records on the drive
 * what it now holds; it refuses a drive a running server claims unless allowed.
 */
import { DriveApi } from '../drive/api.js';
import { defaultRetryPolicy, type RetryPolicy } from '../drive/retry.js';
import type { Env } from '../env.js';
import { DisklessError, errorMessage } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';
import { timedPhases, type Reporter } from '../report.js';
import { serverClaims } from '../drive/claims.js';
import { describeHolders } from '../fleet/elasticstack.js';
import { hashImage, imageIdentity, imageSize } from './image.js';
import { defaultStateDir } from './journal.js';
import type { UploadDriveOptions, UploadDriveReport } from './options.js';
import { planUpload } from './plan.js';
import { standby } from './standby.js';
import { checkFits, explainApiError, findTarget, prepareDrive } from './target.js';
import {
  baseResult,
  logImage,
  logPlan,
  writeContext,
  type Session,
  type UploadResult,
} from './session.js';
import { emptyStats } from './transfer.js';
import { writePlan } from './write.js';

/** Runs the upload in `env` (it names the default state directory); returns what it did. */
export async function upload(
  o: UploadDriveOptions,
  reporter: Reporter,
  env: Env,
  policy: RetryPolicy = defaultRetryPolicy,
): Promise<UploadResult> {
  const started = performance.now();
  const { seconds: phases, phase } = timedPhases(reporter);
  const size = await imageSize(o.image);
  const identity = await imageIdentity(o.image);
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
    const image = hashImage(o.image, size, o.chunkSize);
    const hashing = image.digests.then((d) => {
      phases.hash = (performance.now() - hashStarted) / 1000;
      return d;
    });
    hashing.catch(() => undefined); // awaited later; an early refusal must not leave it unhandled
    const session: Session = {
      o,
      reporter,
      policy,
      api,
      stats: emptyStats(),
      size,
      identity,
      hashing,
      sha256: image.sha256,
      phases,
      phase,
      stateDir: o.stateDir ?? defaultStateDir(env),
    };
    const result = await (o.mode === 'standby' ? standby(session) : inPlace(session)).catch(
      (error: unknown) => {
        throw explainApiError(error, api);
      },
    );
    result.seconds = (performance.now() - started) / 1000;
    return result;
  } finally {
    await api.close();
  }
}

/** The 2011 mode: one drive, found by UUID or name, rewritten where it differs. */
async function inPlace(s: Session): Promise<UploadResult> {
  const { o, reporter, api, phase, size } = s;
  const target = await phase('find', 'Find the drive', () =>
    findTarget(api, { uuid: o.driveUuid, name: o.driveName }),
  );
  const name = target.kind === 'existing' ? target.drive.name : target.name;
  if (target.kind === 'existing') {
    const d = target.drive;
    reporter.info(
      `drive ${d.uuid} "${d.name}", ${formatBytes(d.size)}, claim type ${d.claimType}${d.claimed ? `, attached: ${d.claimed}` : ''}`,
    );
    checkFits(size, o.image, d.size, d.uuid);
    if (serverClaims(d).length > 0) {
      const holders = await describeHolders(api, d);
      if (!o.allowClaimed) {
        throw new DisklessError(
          `Drive ${d.uuid} "${d.name}" is claimed by ${holders}: in-place mode does not write a drive a running server uses; nothing was written. ` +
            'Use mode standby (a new drive, then a rollout), stop the servers, or set allow-claimed: true',
        );
      }
      reporter.warning(
        `drive ${d.uuid} is claimed by ${holders}; writing it anyway (allow-claimed): a server that reads it meanwhile sees a mix of two images`,
      );
    }
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
          s.policy,
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
  const [digests, prepared] = await Promise.all([s.hashing, preparing]);
  logImage(s, digests.sha256);
  const plan = await planUpload(
    target.kind === 'existing' ? target.drive : undefined,
    digests,
    s.stateDir,
  );
  logPlan(s, plan, digests);

  const result = baseResult(s, digests, plan, {
    driveUuid: prepared?.drive.uuid ?? (target.kind === 'existing' ? target.drive.uuid : ''),
    driveName: name,
    created: prepared?.created ?? false,
    claimTypeChanged: prepared?.claimTypeChanged,
  });
  if (!prepared) {
    reporter.info(
      `dry run: would ${target.kind === 'existing' ? `update drive ${target.drive.uuid}` : `create drive "${name}" of ${formatBytes(o.driveSize ?? size)}`} and send ${plan.todo.length} chunks; nothing was written`,
    );
    return result;
  }
  Object.assign(
    result,
    await writePlan(
      {
        ...writeContext(s, digests, plan),
        drive: prepared.drive,
        verify: o.verify,
        recordEarly: true,
      },
      reporter,
      phase,
    ),
  );
  return result;
}

/** The step's outputs and summary. */
export function reportUploadDrive(r: UploadResult): UploadDriveReport {
  const send = r.phases.send ?? 0;
  const mbps = send > 0 ? (r.stats.bytesSent / send / 1e6).toFixed(1) : '-';
  const state = r.dryRun
    ? 'dry run: nothing written'
    : r.created
      ? r.copiedFrom
        ? 'created as a server-side copy of the live drive'
        : 'created'
      : r.upToDate
        ? r.mode === 'standby'
          ? 'reused: the drive already held this image'
          : 'up to date'
        : 'updated';
  return {
    outputs: {
      'drive-uuid': r.driveUuid,
      'drive-name': r.driveName,
      mode: r.mode,
      'previous-drive': r.previous?.uuid ?? '',
      'previous-drive-name': r.previous?.name ?? '',
      'copied-from': r.copiedFrom ?? '',
      'drives-removed': r.removed.map((d) => d.uuid).join(' '),
      release: r.release ?? '',
      created: r.created,
      'up-to-date': r.upToDate,
      'bytes-sent': r.stats.bytesSent,
      'chunks-total': r.chunksTotal,
      'chunks-sent': r.stats.chunksSent,
      'chunks-skipped': r.chunksSkipped,
      'chunks-retried': r.stats.retries,
      'chunks-verified': r.chunksVerified,
      'bytes-read': r.bytesRead,
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
      ['Mode', r.mode],
      [
        'Previous drive (rollback)',
        r.previous
          ? `${r.previous.name} (${r.previous.uuid})`
          : r.mode === 'standby'
            ? 'none'
            : '-',
      ],
      [
        'Image',
        `${r.imageBytes} bytes, sha256 ${r.sha256}${r.release ? `, boots release ${r.release}` : ''}`,
      ],
      ['Bytes on the wire', `${r.stats.bytesSent} (${r.stats.chunksCompressed} chunks compressed)`],
      [
        'Chunks sent / skipped / total',
        `${r.stats.chunksSent} / ${r.chunksSkipped} / ${r.chunksTotal}`,
      ],
      ['Retries', String(r.stats.retries)],
      [
        'Verified chunks',
        `${r.chunksVerified} (${r.bytesRead} bytes read back)${r.chunksRewritten ? ` (${r.chunksRewritten} rewritten)` : ''}`,
      ],
      [
        r.dryRun ? 'Drives retention would remove' : 'Drives removed (retention)',
        r.removed.length > 0 ? r.removed.map((d) => `${d.name} (${d.uuid})`).join(', ') : 'none',
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
