/** Inputs of build-rootfs (action.yml and `diskless build-rootfs` flags). */
import { InputError } from '../errors.js';
import { bool, choice, filePath, integer, list, text } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { isReleaseId } from '../releases/layout.js';
import { UNIT_NAME } from './services.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

/** A var-dirs line: `path [owner[:group]] [mode]`, path relative to /var. */
const VAR_DIR =
  /^(?!\/)[^\s]+(?:\s+[a-z_][a-z0-9_-]*\$?(?::[a-z_][a-z0-9_-]*\$?)?)?(?:\s+[0-7]{3,4})?$/i;

/** A user or group name as Debian's adduser accepts it. */
const ACCOUNT_NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;

export const buildRootfsInputs = defineInputs(
  {
    source: filePath({ absolute: true, default: '/' }),
    target: filePath({ absolute: true, required: true }),
    template: filePath({}),
    exclude: list({ expected: 'rsync exclude patterns, one per line' }),
    'mask-services': list({
      expected: 'systemd unit names, one per line, none starting with -',
      item: (line) => UNIT_NAME.test(line),
    }),
    'enable-services': list({
      expected: 'systemd unit names, one per line, none starting with -',
      item: (line) => UNIT_NAME.test(line),
    }),
    'var-dirs': list({
      expected: 'lines of "path [owner[:group]] [mode]" with path relative to /var',
      item: (line) => VAR_DIR.test(line),
    }),
    layout: choice(['versioned', 'in-place'], { default: 'versioned' }),
    publish: bool({ default: 'true' }),
    keep: integer({ min: 2, max: 1000, default: '5' }),
    'keep-days': integer({ min: 0, max: 36500, default: '30' }),
    'keep-releases': list({
      expected: 'release ids such as 20261129T120000Z, one per line',
      item: isReleaseId,
    }),
    'nfs-mounts': list({
      expected: 'absolute paths of NFS mount tables (rmtab or `showmount -a` output), one per line',
      item: (line) => line.startsWith('/'),
      default: '/var/lib/nfs/rmtab',
    }),
    'copy-usr': bool({ default: 'false' }),
    'client-ssh-keys': bool({ default: 'true' }),
    'state-dir': filePath({ absolute: true, default: '/var/lib/diskless' }),
    'secret-allow': list({ expected: 'paths inside the client root, one per line' }),
    'share-home': bool({ default: 'false' }),
    'client-users': list({
      expected: 'account names of the master, one per line',
      item: (line) => ACCOUNT_NAME.test(line),
    }),
    'keep-password-hashes': list({
      expected: 'account names of the master, one per line',
      item: (line) => ACCOUNT_NAME.test(line),
    }),
    'host-keys-at-boot': bool({ default: 'false' }),
    'nfs-server': text({
      pattern:
        /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/,
      expected: 'a host name or IPv4 address such as 10.0.0.1 (an IPv6 address in [brackets])',
    }),
    'client-hostname': text({
      pattern: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/,
      expected: 'a host name label such as diskless (letters, digits and -, up to 63)',
      default: 'diskless',
    }),
    'template-values': list({
      expected: 'lines of NAME=value with NAME in capitals, digits and _',
      item: (line) => /^[A-Z][A-Z0-9_]*=/.test(line),
    }),
  },
  (o) => {
    if (o.layout === 'in-place' && !o.publish) {
      throw new InputError(
        'publish',
        'Input "publish": got "false"; expected true with layout in-place (an in-place build is live as it is made; use the versioned layout to stage a release)',
      );
    }
    if (o.target === '/') {
      throw new InputError('target', 'Input "target": got "/"; expected a directory other than /');
    }
  },
);

export type BuildRootfsOptions = Options<typeof buildRootfsInputs.fields>;

/** What build-rootfs hands on (action.yml's outputs say the same; a test checks). */
export const buildRootfsOutputs = defineOutputs({
  root: { type: 'string', description: 'Absolute path of the client root just built.' },
  release: {
    type: 'string',
    description: 'Id of the release (the directory name under <target>/releases).',
  },
  published: {
    type: 'boolean',
    description: 'true when the release is current after this step (publish true, or in-place).',
  },
  changed: {
    type: 'boolean',
    description:
      'true when this build made a new release, else false (the release it equals is returned).',
  },
  files: { type: 'number', description: 'Number of files in the client root.' },
  bytes: { type: 'number', description: 'Bytes of file data in the client root.' },
  duration: { type: 'number', description: 'Seconds the build took.' },
});

export type BuildRootfsReport = ReportOf<typeof buildRootfsOutputs>;
