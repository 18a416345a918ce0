// The bundled upload-pve action through the runner-faithful harness, against the Proxmox
// VE emulator over real HTTPS (its certificate pinned): outputs, summary, prune,
// refusals, and the token secret kept out of everything it prints.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPveEmulator, type PveEmulator } from '../../src/emulator/pve/index.js';
import { runAction } from '../../src/harness/run-action.js';
import { everythingShown, failureLine } from '../helpers/actions.js';
import { tempDir } from '../helpers/temp.js';

const dir = path.resolve(import.meta.dirname, '../../actions/upload-pve');
const TOKEN = 'ci@pve!diskless';
const SECRET = 'b9a3f0c2-7d1e-4f5a-9c8b-1e2d3c4b5a69';

let pve: PveEmulator;
let tmp: string;
beforeAll(async () => {
  tmp = await tempDir('contract-pve');
  pve = await startPveEmulator({
    dataDir: path.join(tmp, 'pve'),
    tokens: [{ id: TOKEN, secret: SECRET }],
    authFailureDelayMs: 10,
    taskMs: 10,
    vms: [{ vmid: 101, name: 'client-a', config: { ide2: 'none,media=cdrom' } }],
  });
});
afterAll(async () => {
  await pve.close();
});

async function image(name: string, seed: string): Promise<{ file: string; sha: string }> {
  const data = Buffer.concat([Buffer.alloc(2 << 20, seed), Buffer.alloc(1 << 20, 1)]);
  const file = path.join(tmp, name);
  await writeFile(file, data);
  return { file, sha: createHash('sha256').update(data).digest('hex') };
}

const valid = (file: string) => ({
  image: file,
  'api-url': pve.url.replace('/api2/json', ''),
  'token-id': TOKEN,
  'token-secret': SECRET,
  node: 'pve',
  storage: 'local',
  'tls-fingerprint': pve.fingerprint,
});

describe('upload-pve bundle', () => {
  it('uploads, finds it already there, then prunes an old one after a new image', async () => {
    const v1 = await image('v1.iso', 'one ');
    const first = await runAction({ actionDir: dir, inputs: valid(v1.file) });
    expect(first.exitCode, first.main.log.join('\n')).toBe(0);
    expect(first.outputs).toMatchObject({
      volid: `local:iso/diskless-${v1.sha.slice(0, 8)}.iso`,
      sha256: v1.sha,
      sent: 'true',
      attempts: '1',
      deleted: '',
    });
    expect(first.summary).toContain('<td>uploaded</td>');
    expect(everythingShown(first)).not.toContain(SECRET);

    const again = await runAction({ actionDir: dir, inputs: valid(v1.file) });
    expect(again.outputs).toMatchObject({ sent: 'false', attempts: '0', throughput: '-' });
    expect(again.summary).toContain('already there');

    const v2 = await image('v2.iso', 'two ');
    const v3 = await image('v3.iso', 'three ');
    await runAction({ actionDir: dir, inputs: valid(v2.file) });
    const third = await runAction({
      actionDir: dir,
      inputs: { ...valid(v3.file), prune: 'true', 'keep-previous': '0' },
    });
    expect(third.exitCode, third.main.log.join('\n')).toBe(0);
    expect(third.outputs.deleted?.split(' ').sort()).toEqual(
      [
        `local:iso/diskless-${v1.sha.slice(0, 8)}.iso`,
        `local:iso/diskless-${v2.sha.slice(0, 8)}.iso`,
      ].sort(),
    );
  });

  it('refuses a wrong secret, an untrusted certificate and a bad input in one line, secret unseen', async () => {
    const v = await image('r.iso', 'refused ');
    const wrong = await runAction({
      actionDir: dir,
      inputs: { ...valid(v.file), 'token-secret': 'not-the-secret' },
    });
    expect(wrong.exitCode).toBe(1);
    expect(failureLine(wrong)).toBe(
      `GET ${pve.url}/nodes/pve/storage: HTTP 401 Authentication failed!`,
    );
    const untrusted = await runAction({
      actionDir: dir,
      inputs: { ...valid(v.file), 'tls-fingerprint': '' },
    });
    expect(failureLine(untrusted)).toContain(
      "DEPTH_ZERO_SELF_SIGNED_CERT: the server's certificate is not trusted",
    );
    const bad = await runAction({
      actionDir: dir,
      inputs: { ...valid(v.file), 'token-id': 'root' },
    });
    expect(failureLine(bad)).toBe(
      'Input "token-id": got "root"; expected an API token ID user@realm!tokenid, e.g. ci@pve!diskless',
    );
    for (const run of [wrong, untrusted, bad]) expect(everythingShown(run)).not.toContain(SECRET);
  });
});
