import { describe, expect, it } from 'vitest';
import { flagSource, parseFlags } from '../../src/cli/flags.js';
import { readInputs } from '../../src/inputs/read.js';
import { uploadDriveInputs } from '../../src/upload/options.js';
import { buildRootfsInputs } from '../../src/rootfs/options.js';

const fields = uploadDriveInputs.fields;

describe('CLI flags', () => {
  it('turns flags into the same options as runner inputs', () => {
    const parsed = parseFlags(
      [
        '--image',
        '/tmp/a.iso',
        '--api-url=http://127.0.0.1:9/',
        '--api-user',
        'u',
        '--drive-name',
        'boot',
        '--dry-run',
        '--chunk-size',
        '8M',
        '--json',
      ],
      fields,
      ['json'],
    );
    expect(parsed.switches.has('json')).toBe(true);
    const o = readInputs(
      uploadDriveInputs,
      flagSource(parsed, fields, { DISKLESS_API_KEY: 'k', DISKLESS_CONCURRENCY: '3' }),
    );
    expect(o).toMatchObject({ dryRun: true, chunkSize: 8 << 20, apiKey: 'k', concurrency: 3 });
  });

  it('reads --no-flag; the last of a repeated flag wins, a list takes them all', () => {
    const parsed = parseFlags(
      ['--dry-run', '--no-dry-run', '--image', 'a', '--image', 'b'],
      fields,
      [],
    );
    expect(flagSource(parsed, fields, {})('dry-run')).toBe('false');
    expect(flagSource(parsed, fields, {})('image')).toBe('b');
    const rootfs = buildRootfsInputs.fields;
    const lists = parseFlags(['--exclude', '/a/*', '--exclude', '/b'], rootfs, []);
    expect(flagSource(lists, rootfs, {})('exclude')).toBe('/a/*\n/b');
  });

  it('refuses unknown flags and missing values, naming them', () => {
    expect(() => parseFlags(['--drive'], fields, [])).toThrow(
      /Unknown flag --drive: expected one of --image/,
    );
    expect(() => parseFlags(['--image'], fields, [])).toThrow(/Flag --image needs a value/);
    expect(() => parseFlags(['image'], fields, [])).toThrow(/Unexpected argument "image"/);
  });
});
