// The bundled upload-drive action through the runner-faithful harness, against the
// emulator over real HTTP: outputs, summary, refusals, and the API key kept out of
// everything it prints.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { runAction } from '../../src/harness/run-action.js';
import { everythingShown, failureLine } from '../helpers/actions.js';
import { tempDir } from '../helpers/temp.js';

const dir = path.resolve(import.meta.dirname, '../../actions/upload-drive');
const USER = 'b0e2c2a4-1111-4222-8333-944445555666';
const SECRET = 'Kx9-very-secret-api-key-7Qz';

let emu: Emulator;
let image: string;
let state: string;
let data: Buffer;
beforeAll(async () => {
  const tmp = await tempDir('contract');
  emu = await startEmulator({
    dataDir: path.join(tmp, 'emu'),
    accounts: [{ user: USER, key: SECRET }],
  });
  image = path.join(tmp, 'boot.iso');
  state = path.join(tmp, 'state');
  data = Buffer.concat([Buffer.alloc(3 << 20, 'iso text '), Buffer.alloc(2 << 20, 1)]);
  await writeFile(image, data);
});
afterAll(async () => {
  await emu.close();
});

const valid = () => ({
  image,
  'api-url': emu.url,
  'api-user': USER,
  'api-key': SECRET,
  'drive-name': 'contract-boot',
  'state-dir': state,
});

describe('upload-drive bundle', () => {
  it('uploads, then finds the drive up to date, with outputs and a summary', async () => {
    const first = await runAction({ actionDir: dir, inputs: valid() });
    expect(first.exitCode, first.main.log.join('\n')).toBe(0);
    expect(first.outputs).toMatchObject({
      created: 'true',
      'up-to-date': 'false',
      'chunks-total': '2',
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    expect(first.outputs['drive-uuid']).toMatch(/^[0-9a-f-]{36}$/);
    const sha = createHash('sha256').update(data).digest('hex');
    // Standby mode by default: a drive of its own per image, read back whole.
    expect(first.outputs).toMatchObject({
      mode: 'standby',
      'drive-name': `contract-boot-${sha.slice(0, 8)}`,
      'previous-drive': '',
      'copied-from': '',
      'chunks-verified': '2',
      'bytes-read': String(data.length),
    });
    expect(Number(first.outputs['bytes-sent'])).toBeLessThan(data.length / 2); // compressible: gzip paid
    expect(first.summary).toContain('<td>created</td>');
    expect(first.main.log).toContain('##[group]Find the drives of "contract-boot"');
    expect(first.main.log).toContain('##[group]Send 2 chunks (12 at a time)');

    const second = await runAction({ actionDir: dir, inputs: valid() });
    expect(second.exitCode).toBe(0);
    expect(second.outputs).toMatchObject({
      created: 'false',
      'up-to-date': 'true',
      'bytes-sent': '0',
      'chunks-sent': '0',
      'drive-uuid': first.outputs['drive-uuid'],
    });
    expect(second.summary).toContain('reused: the drive already held this image');

    // A changed image: a new drive, copied on the server from the first; chainable outputs.
    const changed = Buffer.from(data);
    changed.fill('new text ', 4 << 20);
    await writeFile(image, changed);
    const third = await runAction({
      actionDir: dir,
      inputs: { ...valid(), release: '20260101T000000Z' },
    });
    expect(third.exitCode, third.main.log.join('\n')).toBe(0);
    expect(third.outputs).toMatchObject({
      created: 'true',
      'previous-drive': first.outputs['drive-uuid'],
      'previous-drive-name': first.outputs['drive-name'],
      'copied-from': first.outputs['drive-uuid'],
      'chunks-sent': '1',
      release: '20260101T000000Z',
    });
    expect(third.outputs['drive-uuid']).not.toBe(first.outputs['drive-uuid']);
    await writeFile(image, data);
  });

  it('refuses, in-place, a drive a running server claims, naming the server', async () => {
    const created = await runAction({
      actionDir: dir,
      inputs: { ...valid(), mode: 'in-place', 'drive-name': 'contract-in-place' },
    });
    expect(created.exitCode).toBe(0);
    const auth = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`;
    const res = await fetch(new URL('servers/create', emu.url), {
      method: 'POST',
      headers: {
        authorization: auth,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify({
        name: 'contract-web',
        cpu: '1000',
        mem: '512',
        'ide:0:1': created.outputs['drive-uuid'],
        'ide:0:1:media': 'cdrom',
      }),
    });
    const server = (JSON.parse(await res.text()) as { server: string }).server;
    await writeFile(image, Buffer.concat([Buffer.alloc(4096, 3), data.subarray(4096)]));
    const run = await runAction({
      actionDir: dir,
      inputs: { ...valid(), mode: 'in-place', 'drive-name': 'contract-in-place' },
    });
    await writeFile(image, data);
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toMatch(
      new RegExp(
        `^Drive .* is claimed by server ${server} "contract-web": in-place mode does not write`,
      ),
    );
  });

  it('fails with exit code 1 and a clear line when a required input is missing', async () => {
    const run = await runAction({ actionDir: dir, inputs: { ...valid(), 'api-key': '' } });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toBe('Input "api-key" is required: expected the secret API key');
  });

  it('fails with exit code 1 naming the input, the value and what was expected', async () => {
    const run = await runAction({ actionDir: dir, inputs: { ...valid(), 'chunk-size': '65M' } });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toBe(
      'Input "chunk-size": got "65M"; expected a byte size from 4K to 64M such as 4M or 4194304',
    );
  });
});

describe('the API key', () => {
  it('is masked before anything is printed', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid() });
    expect(run.main.stdout.split('\n')[0]).toBe(`::add-mask::${SECRET}`);
    expect(run.main.masks).toEqual([SECRET]);
  });

  it.each([
    ['a successful upload', {}, 0],
    ['a malformed input beside it', { concurrency: 'lots' }, 1],
    ['the key in the URL', { 'api-url': `https://user:${SECRET}@api.example/` }, 1],
    [
      'a key with a trailing newline (trimmed, as the runner does)',
      { 'api-key': `${SECRET}\n` },
      0,
    ],
    ['a refused key', { 'api-key': `${SECRET}-wrong` }, 1],
  ])('never shows, with %s', async (_, extra: Record<string, string>, code) => {
    const run = await runAction({ actionDir: dir, inputs: { ...valid(), ...extra }, debug: true });
    expect(run.exitCode).toBe(code);
    expect(everythingShown(run)).not.toContain(SECRET);
    expect(run.main.log.join('\n')).not.toContain(SECRET);
  });
});
