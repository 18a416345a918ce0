/** Inputs of upload-drive (action.yml and `diskless upload-drive` flags). */
import { InputError } from '../errors.js';
import {
  bool,
  byteSize,
  choice,
  filePath,
  httpUrl,
  integer,
  text,
  uuid,
} from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { RELEASE_ID } from '../releases/layout.js';
import { MAX_FAMILY_NAME } from './family.js';

const MiB = 2 ** 20;

export const uploadDriveInputs = defineInputs(
  {
    image: filePath({ required: true }),
    'api-url': httpUrl({ required: true }),
    'api-user': text({ required: true, expected: 'the API user (the account UUID)' }),
    'api-key': text({ required: true, secret: true, expected: 'the secret API key' }),
    'drive-uuid': uuid({}),
    'drive-name': text({
      pattern: /^[^\n]{1,128}$/,
      expected: 'a drive name of 1 to 128 characters on one line',
    }),
    'drive-size': byteSize({ min: 1, max: 2 ** 50 }),
    'claim-type': choice(['shared', 'exclusive'], { default: 'shared' }),
    'chunk-size': byteSize({ min: 4096, max: 64 * MiB, default: '4194304' }),
    // 12: enough connections to fill a link 8x faster than one connection, even for a small ISO.
    concurrency: integer({ min: 1, max: 64, default: '12' }),
    verify: choice(['none', 'sample', 'full'], { default: 'sample' }),
    'dry-run': bool({ default: 'false' }),
    // standby: a new drive per image, never a drive a server runs from; in-place: the 2011 way.
    mode: choice(['standby', 'in-place'], { default: 'standby' }),
    release: text({
      pattern: RELEASE_ID,
      expected: 'a release id such as 20260101T000000Z (the release the ISO boots)',
    }),
    'allow-claimed': bool({ default: 'false' }),
    'keep-drives': integer({ min: 1, max: 100, default: '3' }),
    'state-dir': filePath({}),
  },
  (o) => {
    if (!o.driveUuid === !o.driveName) {
      throw new InputError(
        'drive-uuid',
        `Inputs "drive-uuid" and "drive-name": got ${o.driveUuid ? 'both' : 'neither'}; expected exactly one`,
      );
    }
    if (o.mode === 'standby' && o.driveUuid) {
      throw new InputError(
        'drive-uuid',
        `Input "drive-uuid": got "${o.driveUuid}"; expected only with mode in-place (standby mode names a new drive per image after drive-name)`,
      );
    }
    if (o.mode === 'standby' && o.allowClaimed) {
      throw new InputError(
        'allow-claimed',
        'Input "allow-claimed": got "true"; expected only with mode in-place (standby mode never writes a claimed drive)',
      );
    }
    if (o.mode === 'standby' && o.driveName && o.driveName.length > MAX_FAMILY_NAME) {
      throw new InputError(
        'drive-name',
        `Input "drive-name": got "${o.driveName}"; expected at most ${MAX_FAMILY_NAME} characters in standby mode (the drive is named "<drive-name>-<8 hex digits of the image's sha256>")`,
      );
    }
  },
);

export type UploadDriveOptions = Options<typeof uploadDriveInputs.fields>;
