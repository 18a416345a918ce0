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
    'state-dir': filePath({}),
  },
  (o) => {
    if (!o.driveUuid === !o.driveName) {
      throw new InputError(
        'drive-uuid',
        `Inputs "drive-uuid" and "drive-name": got ${o.driveUuid ? 'both' : 'neither'}; expected exactly one`,
      );
    }
  },
);

export type UploadDriveOptions = Options<typeof uploadDriveInputs.fields>;
