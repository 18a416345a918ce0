// The bundled CLI (package.json's bin), run as a user would.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const cli = path.resolve(import.meta.dirname, '../../dist/cli/index.js');
const SECRET = 'cli-secret-key-0123456789';

async function diskless(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(cli, args, {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const upload = [
  'upload-drive',
  '--image',
  '/etc/os-release',
  '--api-url',
  'http://127.0.0.1:1/',
  '--api-user',
  'u',
  '--drive-name',
  'boot',
];

describe('diskless CLI', () => {
  it('lists the steps and exits 2 without a command', async () => {
    const r = await diskless([]);
    expect(r.code).toBe(2);
    for (const step of ['build-rootfs', 'build-iso', 'upload-drive'])
      expect(r.stdout).toContain(step);
  });

  it('shows each step its flags', async () => {
    const r = await diskless(['build-iso', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--nfs-root');
    expect(r.stdout).toContain('(default both)');
  });

  it('fails with exit code 1 and one line for a malformed flag', async () => {
    const r = await diskless([...upload, '--concurrency', '0'], { DISKLESS_API_KEY: SECRET });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'diskless upload-drive: Input "concurrency": got "0"; expected a whole number from 1 to 64',
    );
  });

  it('takes the key from the environment and never prints it', async () => {
    const r = await diskless(upload, { DISKLESS_API_KEY: SECRET });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not built yet (issue #3)');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('warns that a key given as a flag shows in ps, and still hides it', async () => {
    const r = await diskless([...upload, '--api-key', SECRET, '--chunk-size', 'huge']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('prefer DISKLESS_API_KEY');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('runs a bundled action through the harness and exits with its code', async () => {
    const r = await diskless(['action', 'build-iso', '--input', 'root=/srv/r']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Error: Input "nfs-root" is required');
  });
});
