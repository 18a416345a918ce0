import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { bootTestInputs } from '../../src/boot/options.js';
import { readInputs } from '../../src/inputs/read.js';
import { thrown } from '../helpers/errors.js';

function read(values: Record<string, string>) {
  return readInputs(bootTestInputs, (name) => values[name]);
}

const errorOf = (run: () => unknown): InputError => thrown(InputError, run);

describe('boot-test inputs', () => {
  it('has defaults: both firmwares, until login, 300 s per boot, 1024 MiB', () => {
    const o = read({ iso: '/tmp/out/diskless.iso' });
    expect(o).toEqual({
      iso: '/tmp/out/diskless.iso',
      root: undefined,
      exports: [],
      firmware: 'both',
      until: 'login',
      bootTimeout: 300,
      memory: 1024,
      workDir: undefined,
    });
  });

  it('requires the ISO', () => {
    const e = errorOf(() => read({}));
    expect(e.input).toBe('iso');
    expect(e.message).toContain('Input "iso" is required');
  });

  it('resolves a relative ISO path and reads the other inputs', () => {
    const o = read({
      iso: 'out/diskless.iso',
      root: '/srv/diskless/releases/r1',
      firmware: 'uefi',
      until: 'report',
      'boot-timeout': '900',
      memory: '2048',
      'work-dir': '/tmp/boot-work',
    });
    expect(o).toMatchObject({
      iso: path.resolve('out/diskless.iso'),
      root: '/srv/diskless/releases/r1',
      firmware: 'uefi',
      until: 'report',
      bootTimeout: 900,
      memory: 2048,
      workDir: '/tmp/boot-work',
    });
  });

  it('parses exports lines, skipping blank lines and comments', () => {
    const o = read({
      iso: '/tmp/x.iso',
      exports: [
        '# served from copies',
        '/srv/diskless/current=/tmp/release',
        '',
        '  /usr=/srv/copies/usr  ',
        '/home=/srv/copies/home',
      ].join('\n'),
    });
    expect(o.exports).toEqual([
      '/srv/diskless/current=/tmp/release',
      '/usr=/srv/copies/usr',
      '/home=/srv/copies/home',
    ]);
  });

  it.each([
    'srv/diskless/current=/tmp/release',
    '/usr',
    '/usr=relative/dir',
    '/usr = /srv/usr',
    '/usr=/srv/my usr',
  ])('refuses the exports line %j, naming the input and the line', (line) => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', exports: `/home=/srv/home\n${line}` }));
    expect(e).toBeInstanceOf(InputError);
    expect(e.input).toBe('exports');
    expect(e.message).toContain('Input "exports"');
    expect(e.message).toContain(`(line ${JSON.stringify(line.trim())} is not)`);
    expect(e.message).toContain('/nfs/path=/local/dir');
  });

  it('refuses an unknown firmware, naming the input, the value and the choices', () => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', firmware: 'efi' }));
    expect(e.input).toBe('firmware');
    expect(e.message).toBe('Input "firmware": got "efi"; expected one of bios | uefi | both');
  });

  it('refuses an unknown until', () => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', until: 'shell' }));
    expect(e.input).toBe('until');
    expect(e.message).toContain('"shell"');
    expect(e.message).toContain('login | report');
  });

  it.each(['5', '29', '3601', '5m', '-1'])('refuses boot-timeout %s, naming it', (value) => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', 'boot-timeout': value }));
    expect(e.input).toBe('boot-timeout');
    expect(e.message).toBe(
      `Input "boot-timeout": got "${value}"; expected a whole number from 30 to 3600`,
    );
  });

  it('refuses too little memory', () => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', memory: '128' }));
    expect(e.input).toBe('memory');
    expect(e.message).toContain('"128"');
  });

  it.each([
    ['root', 'releases/r1'],
    ['work-dir', 'work'],
  ])('refuses a relative %s', (input, value) => {
    const e = errorOf(() => read({ iso: '/tmp/x.iso', [input]: value }));
    expect(e.input).toBe(input);
    expect(e.message).toContain(`Input "${input}": got "${value}"; expected an absolute path`);
  });
});
