// The bundled CLI (package.json's bin), run as a user would.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { tempDir } from '../helpers/temp.js';

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

let emu: Emulator;
let upload: string[];
beforeAll(async () => {
  const dir = await tempDir('cli');
  emu = await startEmulator({ dataDir: dir, accounts: [{ user: 'u', key: SECRET }] });
  const image = path.join(dir, 'boot.iso');
  await writeFile(image, Buffer.alloc(100_000, 'boot image '));
  upload = [
    'upload-drive',
    '--image',
    image,
    '--api-url',
    emu.url,
    '--api-user',
    'u',
    '--drive-name',
    'boot',
    '--state-dir',
    path.join(dir, 'state'),
  ];
});
afterAll(async () => {
  await emu.close();
});

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

  it('takes the key from the environment, prints the outputs as name=value, never the key', async () => {
    const r = await diskless(upload, { DISKLESS_API_KEY: SECRET });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^drive-uuid=[0-9a-f-]{36}$/m);
    expect(r.stdout).toContain('created=true');
    expect(r.stdout).toContain('chunks-total=1');
    expect(r.stderr).toContain('> Send 1 chunks');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const again = await diskless([...upload, '--json'], { DISKLESS_API_KEY: SECRET });
    expect(JSON.parse(again.stdout)).toMatchObject({ 'up-to-date': true, 'bytes-sent': 0 });
  });

  it('serves the emulator and prints its URL first', async () => {
    const dir = await tempDir('cli-emu');
    const child = spawn(cli, ['emulator', '--port', '0', '--data', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [first] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    expect(first).toMatch(/^url=http:\/\/127\.0\.0\.1:\d+\/$/);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
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
