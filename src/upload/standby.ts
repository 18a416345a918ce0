/**
 * Standby mode, the default: the image goes to a drive of its own, named from
 * `drive-name` and the image's digest, never to a drive a running server uses. When the
 * family has a live drive with a trusted record, the new drive starts as a server-side
 * copy of it (the image call), so only the chunks that changed are sent. The drive is
 * read back whole before its record is written: a drive with a record is complete, and
 * only then may a rollout point servers at it. A drive that already holds the image is
 * reused, nothing sent. Then the family's retention removes old drives (family.ts,
 * retention.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DriveApiError } from '../drive/api-error.js';
import type { DriveInfo } from '../drive/api.js';
import { DisklessError, errorMessage } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';
import { serverClaims } from '../drive/claims.js';
import { describeHolders } from '../fleet/elasticstack.js';
import { inFamily, liveDrive, standbyName } from './family.js';
import { planFresh, planUpload, type Plan } from './plan.js';
import { trustedRecord, type DriveRecord } from './record.js';
import { applyRetention, judgeFamily } from './retention.js';
import {
  baseResult,
  logImage,
  logPlan,
  writeContext,
  type Session,
  type UploadResult,
} from './session.js';
import { checkFits, prepareDrive } from './target.js';
import { writePlan } from './write.js';

/** What the run found: the image's sha256, its drive (if made before), the family's live drive. */
interface Found {
  family: DriveInfo[];
  sha256: string;
  name: string;
  existing: DriveInfo | undefined;
  live: DriveInfo | undefined;
  /** The live drive's record when a copy of it is worth making. */
  source: { drive: DriveInfo; record: DriveRecord } | undefined;
}

export async function standby(s: Session): Promise<UploadResult> {
  const found = await find(s);
  const reuse = reusable(s, found);
  if (!reuse && found.existing && serverClaims(found.existing).length > 0) {
    const d = found.existing;
    throw new DisklessError(
      `Drive ${d.uuid} "${d.name}" does not hold this image completely (no trusted record of it) and is claimed by ${await describeHolders(s.api, d)}: standby mode never writes a drive a running server uses; nothing was written`,
    );
  }
  if (s.o.dryRun) return dryRun(s, found, reuse);

  let drive: DriveInfo;
  let plan: Plan;
  let created = false;
  let copiedFrom: string | undefined;
  if (reuse && found.existing) {
    drive = found.existing;
    plan = await planUpload(drive, await s.hashing, s.stateDir);
    s.reporter.info(`drive ${drive.uuid} "${drive.name}" already holds this image: reused`);
  } else {
    const resumed = found.existing
      ? await planUpload(found.existing, await s.hashing, s.stateDir)
      : undefined;
    if (found.existing && resumed?.resumed) {
      drive = await waitImaging(s, found.existing);
      plan = resumed;
    } else {
      const made = await make(s, found);
      ({ drive, created, copiedFrom } = made);
      plan = made.plan;
    }
  }
  const digests = await s.hashing; // the plan has waited for them already
  logPlan(s, plan, digests);
  const result = baseResult(s, digests, plan, {
    driveUuid: drive.uuid,
    driveName: drive.name,
    created,
    claimTypeChanged: undefined,
  });
  result.previous = found.live && { uuid: found.live.uuid, name: found.live.name };
  result.copiedFrom = copiedFrom;
  const claimed = serverClaims(drive).length > 0;
  // Retention's listing goes out while the record is written: one round trip fewer.
  let listing: Promise<DriveInfo[]> | undefined;
  Object.assign(
    result,
    await writePlan(
      {
        ...writeContext(s, digests, plan),
        drive,
        // What this run wrote (or copied) is read back whole; a reused drive as asked.
        verify: plan.upToDate ? s.o.verify : 'full',
        verified: () => {
          listing = s.api.infoAll();
          listing.catch(() => undefined); // awaited by retention
        },
        rewriteGuard: claimed
          ? async (bad) => {
              throw new DisklessError(
                `Drive ${drive.uuid} "${drive.name}": chunks ${bad.join(', ')} differ from its record, and it is claimed by ${await describeHolders(s.api, drive)}; not rewritten. Stop those servers or roll them to another drive, then upload again`,
              );
            }
          : undefined,
      },
      s.reporter,
      s.phase,
    ),
  );
  result.removed = await retention(s, drive.uuid, found.live?.uuid, false, 0, listing);
  return result;
}

/**
 * The family's drives (listed while the image is hashed), then the image's own drive. Only
 * the image's sha256 is waited for: the chunks' digests go on being computed while the
 * drive is created.
 */
async function find(s: Session): Promise<Found> {
  const familyName = s.o.driveName ?? '';
  const family = await s.phase('find', `Find the drives of "${familyName}"`, async () =>
    (await s.api.infoAll()).filter((d) => inFamily(d, familyName)),
  );
  const sha256 = await s.sha256;
  logImage(s, sha256);
  const name = standbyName(familyName, sha256);
  const same = family.filter((d) => d.name === name);
  if (same.length > 1) {
    throw new DisklessError(
      `Input "drive-name": ${same.length} drives are named "${name}" (${same.map((d) => d.uuid).join(', ')}); remove or rename all but one`,
    );
  }
  const existing = same[0];
  const live = liveDrive(family, existing?.uuid);
  if (live) {
    s.reporter.info(
      `live drive of "${familyName}": ${live.uuid} "${live.name}"${live.claimed ? `, claimed: ${live.claimed}` : ', claimed by no running server'}`,
    );
  } else s.reporter.info(`"${familyName}" has no drive yet`);
  const record = live ? trustedRecord(live) : undefined;
  const source =
    live && record && record.chunkSize === s.o.chunkSize ? { drive: live, record } : undefined;
  if (live && !source) {
    s.reporter.info(
      `drive ${live.uuid} has no trusted upload record with ${formatBytes(s.o.chunkSize)} chunks: no server-side copy, every chunk is sent`,
    );
  }
  const size = existing?.size ?? newSize(s, source);
  checkFits(s.size, s.o.image, size, existing ? existing.uuid : `"${name}" (drive-size)`);
  return { family, sha256, name, existing, live, source };
}

/** A new drive's size: drive-size or the image's, and room for the copy of the live drive. */
function newSize(s: Session, source: Found['source']): number {
  return Math.max(s.o.driveSize ?? s.size, source?.drive.size ?? 0);
}

/** The image's drive already holds it: a trusted record of this very image. */
function reusable(s: Session, f: Found): boolean {
  const record = f.existing ? trustedRecord(f.existing) : undefined;
  return !!record && record.sha256 === f.sha256 && record.size === s.size;
}

/**
 * Creates the image's drive (or takes the one a killed run left), copies the live drive
 * onto it on the server when that is worth it, and plans the chunks that still differ.
 */
async function make(
  s: Session,
  f: Found,
): Promise<{ drive: DriveInfo; created: boolean; copiedFrom: string | undefined; plan: Plan }> {
  let drive: DriveInfo;
  let created = false;
  if (f.existing) {
    drive = await waitImaging(s, f.existing);
    s.reporter.info(
      `drive ${drive.uuid} "${drive.name}" exists without a complete upload: made again`,
    );
  } else {
    drive = await s.phase('prepare', `Create drive "${f.name}"`, async () => {
      const p = await prepareDrive(
        s.api,
        { kind: 'new', name: f.name },
        { size: newSize(s, f.source), claimType: s.o.claimType },
        s.policy,
      );
      s.reporter.info(
        `created drive ${p.drive.uuid} "${p.drive.name}" of ${formatBytes(p.drive.size)}, claim type ${p.drive.claimType}`,
      );
      return p.drive;
    });
    created = true;
  }
  if (f.source) {
    const copied = await copy(s, drive, f.source.drive);
    if (copied) {
      return {
        drive: copied,
        created,
        copiedFrom: f.source.drive.uuid,
        plan: planFresh(await s.hashing, { copied: f.source.record }),
      };
    }
  }
  return {
    drive,
    created,
    copiedFrom: undefined,
    plan: planFresh(await s.hashing, created ? { zeros: true } : { unknown: true }),
  };
}

/**
 * The server-side copy of `source` onto `dest`; the drive as it is after the copy, or
 * undefined when the API refused it (then every chunk is sent instead).
 */
async function copy(
  s: Session,
  dest: DriveInfo,
  source: DriveInfo,
): Promise<DriveInfo | undefined> {
  return s.phase(
    'copy',
    `Copy drive "${source.name}" onto "${dest.name}" on the server`,
    async () => {
      try {
        await s.api.image(dest.uuid, source.uuid);
      } catch (error) {
        if (!(error instanceof DriveApiError) || error.status === 401 || error.status === 403)
          throw error;
        s.reporter.warning(
          `the server-side copy of drive ${source.uuid} onto ${dest.uuid} was refused (${errorMessage(error)}): sending every chunk instead`,
        );
        return undefined;
      }
      s.reporter.info(`copying drive ${source.uuid} onto ${dest.uuid} on the server`);
      return waitImaging(s, dest);
    },
  );
}

const POLL_FIRST_MS = 50;
const POLL_MAX_MS = 2000;
const IMAGING_TIMEOUT_MS = 2 * 3600_000;

/** Waits until no copy writes the drive (a copy this run or a killed one started); its info then. */
async function waitImaging(s: Session, drive: DriveInfo): Promise<DriveInfo> {
  const started = Date.now();
  let said = started;
  let delay = POLL_FIRST_MS;
  let now = drive;
  // The drive as listed may predate the copy just started: always ask once.
  for (let first = true; first || now.imaging; first = false) {
    if (!first) {
      if (Date.now() - started > IMAGING_TIMEOUT_MS) {
        throw new DisklessError(
          `drive ${drive.uuid}: the server-side copy onto it did not finish in ${IMAGING_TIMEOUT_MS / 60_000} minutes (imaging ${now.imaging}); run again later`,
        );
      }
      if (Date.now() - said > 10_000) {
        s.reporter.info(`drive ${drive.uuid}: copy in progress (imaging ${now.imaging})`);
        said = Date.now();
      }
      await sleep(delay);
      delay = Math.min(POLL_MAX_MS, delay * 1.5);
    }
    now = await s.api.info(drive.uuid);
  }
  return now;
}

/** Removes old drives of the family (or says which it would); the drives removed. */
async function retention(
  s: Session,
  current: string,
  previous: string | undefined,
  dryRun: boolean,
  extra = 0,
  listing?: Promise<DriveInfo[]>,
): Promise<{ uuid: string; name: string }[]> {
  return s.phase(
    'retention',
    `Keep the ${s.o.keepDrives} newest drives of "${s.o.driveName ?? ''}"`,
    async () => {
      const family = (await (listing ?? s.api.infoAll())).filter((d) =>
        inFamily(d, s.o.driveName ?? ''),
      );
      const verdicts = judgeFamily(family, { current, previous, keep: s.o.keepDrives - extra });
      const removed = await applyRetention(s.api, verdicts, s.reporter, dryRun);
      return removed.map((d) => ({ uuid: d.uuid, name: d.name }));
    },
  );
}

/** Says what a run would do, writing nothing. */
async function dryRun(s: Session, f: Found, reuse: boolean): Promise<UploadResult> {
  const digests = await s.hashing;
  const plan: Plan = reuse
    ? { todo: [], todoBytes: 0, basis: [], resumed: false, upToDate: true, source: 'record' }
    : planFresh(digests, f.source ? { copied: f.source.record } : { zeros: true });
  logPlan(s, plan, digests);
  const result = baseResult(s, digests, plan, {
    driveUuid: f.existing?.uuid ?? '',
    driveName: f.name,
    created: false,
    claimTypeChanged: undefined,
  });
  result.previous = f.live && { uuid: f.live.uuid, name: f.live.name };
  s.reporter.info(
    `dry run: would ${reuse ? `reuse drive ${f.existing?.uuid ?? ''}` : `${f.existing ? 'make again' : 'create'} drive "${f.name}"${f.source ? `, copy drive ${f.source.drive.uuid} onto it on the server` : ''} and send ${plan.todo.length} chunks`}; nothing was written`,
  );
  // The drive this run would write is the newest: it counts as one of the kept.
  result.removed = await retention(
    s,
    f.existing?.uuid ?? '',
    f.live?.uuid,
    true,
    f.existing ? 0 : 1,
  );
  return result;
}
