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
  {
    source: 'Root to copy from, an absolute path (the master itself by default).',
    target:
      'Absolute base directory of the client roots; releases go to <target>/releases/<id> and <target>/current points at the promoted one. Never /, the source or a parent of it.',
    template: 'Overlay directory copied over the client root; files ending in .tmpl are rendered.',
    exclude: 'Extra rsync exclude patterns, one per line, on top of the built-in list.',
    'mask-services':
      'Extra systemd units to mask in the client root, one per line, on top of the built-in server-only list.',
    'enable-services': 'Systemd units to enable in the client root, one per line.',
    'var-dirs':
      'Directories to create in the client\'s tmpfs /var at boot, one per line as "path [owner[:group]] [mode]" with path relative to /var, e.g. "lib/varnish varnish 0755".',
    layout:
      'versioned (immutable releases, atomic switch of current) or in-place (sync straight into target; running clients see the change).',
    publish:
      'true makes the new release current at once; false stages it under releases/<id> and leaves current alone, for the promote action after its boot test.',
    keep: 'Number of newest releases always kept. An older one is removed only when it also left current more than keep-days ago and nothing uses it (ledger, NFS mounts, keep-releases).',
    'keep-days':
      'Days after it stopped being current (or was superseded, if never current) before a release may be removed.',
    'keep-releases': 'Release ids never to remove, one per line.',
    'nfs-mounts':
      "NFS mount tables that name the releases clients have mounted, one path per line: the kernel server's rmtab, or a file of `showmount -a` output. A missing file is no signal.",
    'copy-usr': 'Copy /usr into the client root instead of mounting it read-only from the master.',
    'client-ssh-keys':
      'Give clients their own ssh host keys, generated once and kept in state-dir across rebuilds.',
    'state-dir':
      "Absolute directory for the tool's state on the master (the clients' ssh host keys, kept across builds).",
    'secret-allow':
      'Paths inside the client root that the secret scan may accept, one per line (dir/ for a whole tree, * and ** globs).',
    'share-home':
      "Let clients mount the master's /home (the template's fstab may then mount it over NFS); the build then scans it like the client root and fails on hits. Off: clients get a /home of their own (the example template's tmpfs) and cannot read the master's users' files.",
    'client-users':
      'Non-system users (UID_MIN..UID_MAX of login.defs) of the master that clients keep in passwd, shadow and group, one per line; the others are left out.',
    'keep-password-hashes':
      "Accounts whose password hash the client's shadow keeps, one per line; every other hash is locked (!), since any client root can read the client's shadow over NFS.",
    'host-keys-at-boot':
      "Make each client's ssh host keys at boot in tmpfs (no private host key in the exported root; a client's key changes at every boot) instead of one pair from state-dir shared by all.",
    'nfs-server':
      "Address of the NFS server the clients mount from ({{NFS_SERVER}} in .tmpl files); needed for the generated fstab's /usr line when the template has no etc/fstab and copy-usr is false.",
    'client-hostname': 'Host name for the clients ({{CLIENT_HOSTNAME}} in .tmpl files).',
    'template-values':
      'Extra values for .tmpl files, one per line as NAME=value ({{NAME}}); built in are NFS_SERVER, NFS_ROOT (<target>/current), USR_ROOT, CLIENT_HOSTNAME and MASTER_HOSTNAME.',
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
