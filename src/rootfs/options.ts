/** Inputs of build-rootfs (action.yml and `diskless build-rootfs` flags). */
import { InputError } from '../errors.js';
import { bool, choice, filePath, integer, list } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';

/** A var-dirs line: `path [owner[:group]] [mode]`, path relative to /var. */
const VAR_DIR =
  /^(?!\/)[^\s]+(?:\s+[a-z_][a-z0-9_-]*\$?(?::[a-z_][a-z0-9_-]*\$?)?)?(?:\s+[0-7]{3,4})?$/i;

export const buildRootfsInputs = defineInputs(
  {
    source: filePath({ absolute: true, default: '/' }),
    target: filePath({ absolute: true, required: true }),
    template: filePath({}),
    exclude: list({ expected: 'rsync exclude patterns, one per line' }),
    'mask-services': list({ expected: 'systemd unit names, one per line' }),
    'enable-services': list({ expected: 'systemd unit names, one per line' }),
    'var-dirs': list({
      expected: 'lines of "path [owner[:group]] [mode]" with path relative to /var',
      item: (line) => VAR_DIR.test(line),
    }),
    layout: choice(['versioned', 'in-place'], { default: 'versioned' }),
    keep: integer({ min: 2, max: 1000, default: '5' }),
    'copy-usr': bool({ default: 'false' }),
    'client-ssh-keys': bool({ default: 'true' }),
    'state-dir': filePath({ absolute: true, default: '/var/lib/diskless' }),
    'secret-allow': list({ expected: 'paths inside the client root, one per line' }),
  },
  (o) => {
    if (o.target === '/') {
      throw new InputError('target', 'Input "target": got "/"; expected a directory other than /');
    }
  },
);

export type BuildRootfsOptions = Options<typeof buildRootfsInputs.fields>;
