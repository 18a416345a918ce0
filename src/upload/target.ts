/**
 * Which drive to write: a given UUID that must exist, or the one drive with a given
 * name (created when there is none, refused when there are several), with the claim
 * type it must have and room for the image.
 */
import { DriveApiError, NetworkError } from '../drive/api-error.js';
import type { DriveApi, DriveInfo } from '../drive/api.js';
import { withRetry, type RetryPolicy } from '../drive/retry.js';
import { DisklessError } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';

export type Target = { kind: 'existing'; drive: DriveInfo } | { kind: 'new'; name: string };

/** Turns the API's refusals of our credentials into a message that names the user, never the key. */
export function explainApiError(error: unknown, api: DriveApi): unknown {
  if (error instanceof DriveApiError && (error.status === 401 || error.status === 403)) {
    return new DisklessError(
      `The API at ${api.url.href} refused user ${api.user} (HTTP ${error.status} ${error.type}): check api-user and api-key`,
    );
  }
  if (error instanceof NetworkError) {
    return new DisklessError(
      `Cannot reach the API at ${api.url.href} (${error.message}); check api-url`,
    );
  }
  return error;
}

export async function findTarget(
  api: DriveApi,
  want: { uuid: string | undefined; name: string | undefined },
): Promise<Target> {
  if (want.uuid) {
    try {
      return { kind: 'existing', drive: await api.info(want.uuid) };
    } catch (error) {
      if (
        error instanceof DriveApiError &&
        (error.status === 404 ||
          (error.status === 400 && /not be found|missing/i.test(error.detail + error.type)))
      ) {
        throw new DisklessError(
          `Input "drive-uuid": got "${want.uuid}"; expected a drive of user ${api.user} at ${api.url.href}, and there is none with that UUID`,
        );
      }
      throw error;
    }
  }
  const name = want.name ?? '';
  const named = (await api.infoAll()).filter((d) => d.name === name);
  if (named.length > 1) {
    throw new DisklessError(
      `Input "drive-name": ${named.length} drives are named "${name}" (${named.map((d) => d.uuid).join(', ')}); give drive-uuid to pick one, or rename the others`,
    );
  }
  const [drive] = named;
  return drive ? { kind: 'existing', drive } : { kind: 'new', name };
}

/** Refuses, before anything is written, an image that does not fit the drive. */
export function checkFits(
  imageBytes: number,
  image: string,
  driveBytes: number,
  drive: string,
): void {
  if (imageBytes <= driveBytes) return;
  throw new DisklessError(
    `Image ${image} is ${imageBytes} bytes (${formatBytes(imageBytes)}) but drive ${drive} is ${driveBytes} bytes (${formatBytes(driveBytes)}); nothing was written. ` +
      'Resize the drive to at least the image size, or upload to a new drive-name (drive-size sets its size)',
  );
}

/**
 * Creates the drive. A create is not idempotent: when its answer is lost, the drive may
 * exist anyway, so before trying again we look for it by name and adopt a single match.
 */
async function createDrive(
  api: DriveApi,
  fields: { name: string; size: number; claimType: string },
  policy: RetryPolicy,
): Promise<DriveInfo> {
  const body = { name: fields.name, size: String(fields.size), 'claim:type': fields.claimType };
  return withRetry(async (attempt) => {
    if (attempt > 1) {
      const existing = (await api.infoAll()).filter((d) => d.name === fields.name);
      if (existing.length === 1 && existing[0]) return existing[0];
    }
    return api.create(body);
  }, policy);
}

export interface Prepared {
  drive: DriveInfo;
  created: boolean;
  /** "exclusive -> shared" when the claim type was corrected. */
  claimTypeChanged: string | undefined;
}

/** Creates the drive, or corrects an existing drive's claim type. */
export async function prepareDrive(
  api: DriveApi,
  target: Target,
  o: { size: number; claimType: string },
  policy: RetryPolicy,
): Promise<Prepared> {
  if (target.kind === 'new') {
    const drive = await createDrive(
      api,
      { name: target.name, size: o.size, claimType: o.claimType },
      policy,
    );
    return { drive, created: true, claimTypeChanged: undefined };
  }
  if (target.drive.claimType === o.claimType) {
    return { drive: target.drive, created: false, claimTypeChanged: undefined };
  }
  const drive = await api.set(target.drive.uuid, { 'claim:type': o.claimType });
  return { drive, created: false, claimTypeChanged: `${target.drive.claimType} -> ${o.claimType}` };
}
