import { describe, expect, it } from 'vitest';
import { actionFlags } from '../../src/cli/action-command.js';
import { flagHelp, flagSource, parseFlags, readFlags } from '../../src/cli/flags.js';
import { custom, decimal, each, FieldError, integer, text } from '../../src/inputs/fields.js';
import { defineInputs, readInputs, readValue } from '../../src/inputs/read.js';
import { thrown } from '../helpers/errors.js';
import { InputError } from '../../src/errors.js';
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

describe('the flag layer of the emulator and action commands', () => {
  const schema = defineInputs({
    rate: decimal({ min: 0, max: 1, expected: 'a share from 0 to 1' }),
    speed: decimal({ min: 0, above: true }),
    seed: decimal({ min: 0, max: 9, whole: true }),
    pair: each(
      custom({ expected: 'USER:KEY' }, (v) => {
        if (!/^\w+:\w+$/.test(v)) throw new FieldError(undefined, JSON.stringify('masked'));
        return v.split(':');
      }),
    ),
    path: each(text({ pattern: /^\//, expected: 'an absolute path' })),
  });

  it('reads numbers, repeated flags one item a repeat, and leaves unset ones out', () => {
    const o = readFlags(schema, [
      '--rate=0.25',
      '--speed',
      '1e3',
      '--pair',
      'a:b',
      '--pair',
      'c:d',
      '--path',
      '/x',
    ]);
    expect(o).toEqual({
      rate: 0.25,
      speed: 1000,
      seed: undefined,
      pair: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      path: ['/x'],
    });
  });

  it('refuses a bad value in one line as a flag: the bad repeat alone, masked where its field masks', () => {
    const cases: [string[], string][] = [
      [['--rate', '1.5'], 'Invalid --rate "1.5": expected a share from 0 to 1'],
      [['--speed', '0'], 'Invalid --speed "0": expected a number above 0'],
      [['--seed', '2.5'], 'Invalid --seed "2.5": expected a whole number from 0 to 9'],
      [['--pair', 'a:b', '--pair', 'secret'], 'Invalid --pair "masked": expected USER:KEY'],
      [['--path', '/a', '--path', 'rel'], 'Invalid --path "rel": expected an absolute path'],
    ];
    for (const [args, message] of cases) {
      expect(thrown(InputError, () => readFlags(schema, args)).message, args.join(' ')).toBe(
        message,
      );
    }
    const required = defineInputs({ data: text({ required: true, expected: 'a directory' }) });
    expect(() => readFlags(required, [])).toThrow(
      /^Flag --data is required: expected a directory$/,
    );
  });

  it('reads one value of a field alone, with the steps wording', () => {
    const pair = custom({ expected: 'key=value' }, (v) => {
      if (!v.includes('=')) throw new FieldError();
      return v;
    });
    expect(readValue('input', pair, 'a=b\nc')).toBe('a=b\nc');
    expect(() => readValue('input', pair, 'ab')).toThrow(
      /^Input "input": got "ab"; expected key=value$/,
    );
  });

  it('takes a short alias for a flag', () => {
    const parsed = parseFlags(['-i', 'a=1', '--input=b=2'], actionFlags.fields, [], {
      '-i': 'input',
    });
    expect(parsed.raw.get('input')).toEqual(['a=1', 'b=2']);
  });

  it('prints one --help line per field from its description, else what it expects', () => {
    const fields = {
      data: text({ required: true }),
      port: integer({ min: 0, max: 9, default: '0' }),
      node: each(text({})),
    };
    const described = defineInputs(fields, undefined, {
      data: 'directory holding the drives',
      port: 'TCP port',
      node: 'a node',
    });
    expect(flagHelp(described.fields).split('\n')).toEqual([
      '  --data             directory holding the drives (required)',
      '  --port             TCP port (default 0)',
      '  --node             a node (repeatable)',
    ]);
    expect(flagHelp(defineInputs(fields).fields).split('\n')).toEqual([
      '  --data             a value (required)',
      '  --port             a whole number from 0 to 9 (default 0)',
      '  --node             a value (repeatable)',
    ]);
    const long = defineInputs({ 'a-very-long-flag-name': text({}) }, undefined, {
      'a-very-long-flag-name': 'word '.repeat(40).trim(),
    });
    const lines = flagHelp(long.fields).split('\n');
    expect(lines[0]).toBe('  --a-very-long-flag-name');
    expect(lines.slice(1).every((l) => l.startsWith(' '.repeat(21)) && l.length <= 96)).toBe(true);
    expect(lines.slice(1).join(' ').replace(/\s+/g, ' ').trim()).toBe('word '.repeat(40).trim());
  });
});
