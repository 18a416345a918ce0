import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import {
  bool,
  byteSize,
  choice,
  filePath,
  httpUrl,
  integer,
  list,
  parseByteSize,
  text,
  uuid,
} from '../../src/inputs/fields.js';
import { defineInputs, readInputs } from '../../src/inputs/read.js';
import { uploadDriveInputs } from '../../src/upload/options.js';
import { buildRootfsInputs } from '../../src/rootfs/options.js';
import { buildIsoInputs } from '../../src/iso/options.js';
import { thrown } from '../helpers/errors.js';

function from(values: Record<string, string>) {
  return (name: string) => values[name];
}

const errorOf = (run: () => unknown): InputError => thrown(InputError, run);

describe('field parsers', () => {
  it('reads booleans with the runner rules only', () => {
    const schema = defineInputs({ flag: bool({ default: 'false' }) });
    for (const t of ['true', 'True', 'TRUE'])
      expect(readInputs(schema, from({ flag: t })).flag).toBe(true);
    for (const f of ['false', 'False', 'FALSE'])
      expect(readInputs(schema, from({ flag: f })).flag).toBe(false);
    expect(readInputs(schema, from({})).flag).toBe(false);
    const e = errorOf(() => readInputs(schema, from({ flag: 'yes' })));
    expect(e.message).toBe(
      'Input "flag": got "yes"; expected one of true | True | TRUE | false | False | FALSE',
    );
  });

  it('reads integers within their range', () => {
    const schema = defineInputs({ n: integer({ min: 1, max: 64, default: '8' }) });
    expect(readInputs(schema, from({})).n).toBe(8);
    expect(readInputs(schema, from({ n: ' 64 ' })).n).toBe(64);
    for (const bad of ['0', '65', '1.5', '-3', '4x', '1e3']) {
      expect(errorOf(() => readInputs(schema, from({ n: bad }))).message).toContain(
        'expected a whole number from 1 to 64',
      );
    }
  });

  it('reads byte sizes in bytes or binary units', () => {
    expect(parseByteSize('4194304')).toBe(4194304);
    expect(parseByteSize('4M')).toBe(4 * 2 ** 20);
    expect(parseByteSize('4MiB')).toBe(4 * 2 ** 20);
    expect(parseByteSize('1.5G')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('64k')).toBe(65536);
    expect(parseByteSize('0.3')).toBeUndefined();
    expect(parseByteSize('4 X')).toBeUndefined();
    expect(parseByteSize('-4M')).toBeUndefined();
    const schema = defineInputs({
      size: byteSize({ min: 4096, max: 64 * 2 ** 20, default: '4M' }),
    });
    expect(readInputs(schema, from({})).size).toBe(4 * 2 ** 20);
    expect(errorOf(() => readInputs(schema, from({ size: '65M' }))).message).toBe(
      'Input "size": got "65M"; expected a byte size from 4K to 64M such as 4M or 4194304',
    );
    expect(errorOf(() => readInputs(schema, from({ size: '0' }))).message).toContain('got "0"');
  });

  it('reads multi-line lists without blank lines and comments', () => {
    const schema = defineInputs({ items: list({}) });
    expect(readInputs(schema, from({ items: 'a\n\n  # comment\n b \r\nc' })).items).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(readInputs(schema, from({})).items).toEqual([]);
  });

  it('checks each list line when asked', () => {
    expect(
      readInputs(
        buildRootfsInputs,
        from({ target: '/srv/x', 'var-dirs': 'lib/varnish varnish\nlog root:adm 0750' }),
      ).varDirs,
    ).toEqual(['lib/varnish varnish', 'log root:adm 0750']);
    const e = errorOf(() =>
      readInputs(buildRootfsInputs, from({ target: '/srv/x', 'var-dirs': 'lib/ok\n/abs/path' })),
    );
    expect(e.message).toContain('Input "var-dirs"');
    expect(e.message).toContain('line "/abs/path" is not');
  });

  it('demands absolute paths where asked and resolves relative ones', () => {
    const schema = defineInputs({
      target: filePath({ absolute: true, required: true }),
      template: filePath({}),
    });
    expect(errorOf(() => readInputs(schema, from({ target: 'srv/nfs' }))).message).toBe(
      'Input "target": got "srv/nfs"; expected an absolute path',
    );
    const o = readInputs(schema, from({ target: '/srv/nfs/', template: 'template' }));
    expect(o.target).toBe('/srv/nfs');
    expect(o.template).toBe(`${process.cwd()}/template`);
  });

  it('reads URLs, UUIDs and choices', () => {
    const schema = defineInputs({
      url: httpUrl({}),
      id: uuid({}),
      mode: choice(['bios', 'uefi', 'both'], { default: 'both' }),
      name: text({ pattern: /^[a-z]+$/ }),
    });
    expect(readInputs(schema, from({ url: 'http://127.0.0.1:8080' })).url).toBe(
      'http://127.0.0.1:8080/',
    );
    expect(errorOf(() => readInputs(schema, from({ url: 'ftp://x' }))).message).toContain(
      'expected an http:// or https:// URL',
    );
    expect(errorOf(() => readInputs(schema, from({ url: 'not a url' }))).input).toBe('url');
    expect(readInputs(schema, from({ id: 'ABCDEF01-2345-6789-ABCD-EF0123456789' })).id).toBe(
      'abcdef01-2345-6789-abcd-ef0123456789',
    );
    expect(errorOf(() => readInputs(schema, from({ id: '1234' }))).message).toContain('a UUID');
    expect(errorOf(() => readInputs(schema, from({ mode: 'efi' }))).message).toBe(
      'Input "mode": got "efi"; expected one of bios | uefi | both',
    );
    expect(readInputs(schema, from({})).mode).toBe('both');
  });

  it('never shows a URL password in an error', () => {
    const schema = defineInputs({ url: httpUrl({}) });
    const e = errorOf(() => readInputs(schema, from({ url: 'https://me:hunter2@api.example/' })));
    expect(e.message).not.toContain('hunter2');
    expect(e.message).toContain('without credentials');
  });
});

describe('readInputs', () => {
  const valid = {
    image: '/tmp/boot.iso',
    'api-url': 'https://api-lon-p.elastichosts.com/',
    'api-user': 'b0e2c2a4-1111-4222-8333-944445555666',
    'api-key': 'S3CR3T-KEY-VALUE',
    'drive-name': 'boot',
  };

  it('returns typed camelCase options with defaults filled in', () => {
    const o = readInputs(uploadDriveInputs, from(valid));
    expect(o).toMatchObject({
      image: '/tmp/boot.iso',
      apiUrl: 'https://api-lon-p.elastichosts.com/',
      claimType: 'shared',
      chunkSize: 4194304,
      concurrency: 12,
      verify: 'sample',
      dryRun: false,
      driveName: 'boot',
      driveUuid: undefined,
    });
  });

  it('names a missing required input and what it expects', () => {
    const e = errorOf(() => readInputs(uploadDriveInputs, from({ ...valid, 'api-url': '  ' })));
    expect(e.message).toBe('Input "api-url" is required: expected an http:// or https:// URL');
    expect(e.input).toBe('api-url');
  });

  it('hides the value of a credential', () => {
    const schema = defineInputs({ key: text({ secret: true, pattern: /^[a-z]+$/ }) });
    const e = errorOf(() => readInputs(schema, from({ key: 'TOP-SECRET-1' })));
    expect(e.message).not.toContain('TOP-SECRET-1');
    expect(e.message).toContain('hidden');
  });

  it('applies rules across inputs', () => {
    const { 'drive-name': _, ...noDrive } = valid;
    expect(errorOf(() => readInputs(uploadDriveInputs, from(noDrive))).message).toBe(
      'Inputs "drive-uuid" and "drive-name": got neither; expected exactly one',
    );
    expect(
      errorOf(() =>
        readInputs(
          uploadDriveInputs,
          from({ ...valid, 'drive-uuid': 'b0e2c2a4-1111-4222-8333-944445555666' }),
        ),
      ).message,
    ).toContain('got both');
    expect(errorOf(() => readInputs(buildRootfsInputs, from({ target: '/' }))).message).toContain(
      'expected a directory other than /',
    );
  });

  it('checks an NFS root is host:/absolute/path', () => {
    const base = { root: '/srv/r' };
    for (const good of ['10.0.0.1:/srv/diskless/current', 'nfs.example.com:/x', '[fd00::1]:/r']) {
      expect(readInputs(buildIsoInputs, from({ ...base, 'nfs-root': good }))['nfsRoot']).toBe(good);
    }
    for (const bad of ['10.0.0.1', '10.0.0.1:srv', '/srv/x', 'host:/a b']) {
      expect(
        errorOf(() => readInputs(buildIsoInputs, from({ ...base, 'nfs-root': bad }))).message,
      ).toContain('expected host:/absolute/path');
    }
  });
});
