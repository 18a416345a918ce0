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
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

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
  {
    image: 'The image (ISO) to upload.',
    'api-url': "Base URL of the zone's API, e.g. https://api-lon-p.elastichosts.com/.",
    'api-user': 'API user (the account UUID).',
    'api-key': 'Secret API key; masked, and never logged, stored or shown in errors.',
    'drive-uuid':
      'In-place mode only, UUID of an existing drive to update. Give this or drive-name.',
    'drive-name':
      'Standby mode, the drive family: each image gets a drive named <drive-name>-<first 8 hex digits of its sha256>. In-place mode, the name of the drive to update (created when no drive has it). Give this or drive-uuid.',
    'drive-size':
      "Size of a drive created here (e.g. 1G), to leave room to grow; by default the image's size.",
    'claim-type':
      'Claim type the drive must have, shared (many servers boot from it) or exclusive.',
    'chunk-size': 'Bytes per write request, 4K to 64M (e.g. 4M or 4194304).',
    concurrency: 'Write requests in flight at once, 1 to 64.',
    verify:
      'Read back through the API and compare digests, none, sample (some chunks) or full. In standby mode a drive this run wrote is always read back whole; this sets how a reused one is checked.',
    'dry-run': 'Only report whether the drive would be created or updated and what would be sent.',
    mode: 'standby (a new drive per image, never a drive a running server has claimed; a rollout then points servers at it) or in-place (rewrite one drive, the 2011 way; refuses a claimed drive unless allow-claimed).',
    release: 'The release id the ISO boots (e.g. 20260101T000000Z), recorded on the drive.',
    'allow-claimed':
      'In-place mode only, write the drive even while running servers have claimed it.',
    'keep-drives':
      'Standby mode, drives of the family kept, newest first (the one just written counts); the previous drive and every claimed drive are kept besides, older ones removed.',
    'state-dir':
      'Directory for the resume journal of an interrupted upload; by default $XDG_STATE_HOME/diskless or ~/.local/state/diskless. What the drive holds is recorded on the drive itself (user:diskless-* metadata), so skipping unchanged chunks needs no local state.',
  },
);

export type UploadDriveOptions = Options<typeof uploadDriveInputs.fields>;

/** What upload-drive hands on (action.yml's outputs say the same; a test checks). */
export const uploadDriveOutputs = defineOutputs({
  'drive-uuid': {
    type: 'string',
    description:
      'UUID of the drive written (standby mode, the new drive a rollout points servers at).',
  },
  'drive-name': { type: 'string', description: 'Name of the drive written.' },
  mode: { type: 'string', description: 'The mode the run used, standby or in-place.' },
  'previous-drive': {
    type: 'string',
    description:
      "Standby mode, UUID of the family's live drive before this run (the rollback target); empty when none.",
  },
  'previous-drive-name': {
    type: 'string',
    description: 'Standby mode, name of the previous drive; empty when none.',
  },
  'copied-from': {
    type: 'string',
    description:
      'Standby mode, UUID of the drive copied on the server onto the new one; empty when none.',
  },
  'drives-removed': {
    type: 'string',
    description:
      "Standby mode, space-separated UUIDs of the family's drives retention removed (dry run, would remove).",
  },
  release: {
    type: 'string',
    description: 'The release recorded on the drive (the release input).',
  },
  'bytes-read': { type: 'number', description: 'Bytes read back through the API to verify.' },
  created: { type: 'boolean', description: 'true when the drive was created by this run.' },
  'bytes-sent': {
    type: 'number',
    description: 'Bytes sent on the wire for chunk data (after compression).',
  },
  'chunks-total': { type: 'number', description: 'Number of chunks in the image.' },
  'chunks-sent': { type: 'number', description: 'Chunks written by this run.' },
  'chunks-skipped': {
    type: 'number',
    description: 'Chunks not sent because the drive already held them.',
  },
  'chunks-retried': {
    type: 'number',
    description:
      'Write requests that were retried after a transient failure (network, 5xx, 429, 409).',
  },
  'chunks-verified': {
    type: 'number',
    description: 'Chunks read back through the API and found equal to the image.',
  },
  'up-to-date': {
    type: 'boolean',
    description: 'true when the drive already held this image and nothing was sent.',
  },
  sha256: { type: 'string', description: 'SHA-256 of the image, hex.' },
  duration: { type: 'string', description: 'Seconds the step took.' },
  'send-seconds': {
    type: 'string',
    description: 'Seconds spent sending chunks (the transfer phase).',
  },
  throughput: {
    type: 'string',
    description: "MB/s on the wire while sending chunks ('-' when nothing was sent).",
  },
});

export type UploadDriveReport = ReportOf<typeof uploadDriveOutputs>;
