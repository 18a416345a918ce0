/**
 * Shipping an ISO to the emulator's Proxmox front end over HTTPS: blue/green names, the
 * sha256 that Proxmox verifies (a mismatch is the task's failure text), nothing sent
 * twice, a dry run that sends nothing, retries of the whole upload after a cut
 * connection, a file in use never overwritten, and retention that keeps the previous
 * image and never deletes one in use.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DisklessError, InputError } from '../../src/errors.js';
import { sha256File } from '../../src/files.js';
import {
  PveApi,
  PveApiError,
  pruneFamily,
  readConfig,
  repointCd,
  uploadIsoImage,
  waitTask,
  type PveUploadOptions,
} from '../../src/proxmox/index.js';
import { rejected } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';
import { auditor } from '../emulator/pve-helpers.js';
import { client, fastRetry, fastWait, isoFile, startPve, type StartedPve } from './helpers.js';
import { recordingReporter } from '../../src/report.js';

const MiB = 2 ** 20;
let s: StartedPve;
let api: PveApi;
let work: string;
beforeEach(async () => {
  s = await startPve();
  api = client(s);
  work = await tempDir('pve-upload');
});
afterEach(async () => {
  await api.close();
  await s.stop();
});

function options(image: string, extra: Partial<PveUploadOptions> = {}): PveUploadOptions {
  return {
    image,
    family: 'diskless',
    node: 'pve',
    storage: 'local',
    dryRun: false,
    retry: fastRetry,
    wait: fastWait,
    progressMs: 20,
    ...extra,
  };
}

function stored(name: string): string {
  return path.join(s.dataDir, 'storage', 'local', 'template', 'iso', name);
}

describe('upload', () => {
  it('sends the ISO as <family>-<sha8>.iso, verified by Proxmox, and not again the second time', async () => {
    const image = await isoFile(work, 'boot.iso', 5 * MiB + 123);
    const sha = await sha256File(image);
    const out = recordingReporter();
    const first = await uploadIsoImage(api, options(image), out);
    expect(first).toMatchObject({
      volid: `local:iso/diskless-${sha.slice(0, 8)}.iso`,
      sent: true,
      attempts: 1,
      size: 5 * MiB + 123,
      sha256: sha,
    });
    expect(await sha256File(stored(first.filename))).toBe(sha);
    expect(out.lines.join('\n')).toContain(`Proxmox verifies the sha256`);
    expect(s.emulator.stats.uploads).toBe(1);

    const again = recordingReporter();
    const second = await uploadIsoImage(api, options(image), again);
    expect(second).toMatchObject({ volid: first.volid, sent: false, attempts: 0 });
    expect(again.lines).toContain(`${first.volid} is already there (5.0 MiB): nothing to send`);
    expect(s.emulator.stats.uploads).toBe(1);
  });

  it('a dry run sends nothing and says what it would do', async () => {
    const image = await isoFile(work, 'boot.iso', MiB);
    const out = recordingReporter();
    const r = await uploadIsoImage(api, options(image, { dryRun: true }), out);
    expect(r).toMatchObject({ sent: false, dryRun: true });
    expect(out.lines).toContain(`dry run: would upload ${r.volid} (1.0 MiB)`);
    expect(s.emulator.stats.uploadBytes).toBe(0);
    await expect(stat(stored(r.filename))).rejects.toThrow(/ENOENT/);
  });

  it("a wrong checksum: the upload task fails with Proxmox's text and nothing is stored", async () => {
    const image = await isoFile(work, 'boot.iso', MiB);
    const sha = await sha256File(image);
    const upid = await api.uploadIso(
      'pve',
      'local',
      image,
      MiB,
      'diskless-bad.iso',
      { algorithm: 'sha256', value: 'f'.repeat(64) },
      () => undefined,
    );
    const error = await rejected(
      DisklessError,
      waitTask(api, upid, 'upload of diskless-bad.iso', fastWait),
    );
    expect(error.message).toContain(
      `upload of diskless-bad.iso: the Proxmox task failed: checksum mismatch: got '${sha}' != expect '${'f'.repeat(64)}'`,
    );
    await expect(stat(stored('diskless-bad.iso'))).rejects.toThrow(/ENOENT/);
  });

  it('a token without Datastore.AllocateTemplate gets 403 before the body is sent', async () => {
    const image = await isoFile(work, 'boot.iso', MiB);
    const ro = new PveApi({
      url: s.emulator.url,
      tokenId: auditor.id,
      secret: auditor.secret,
      tls: { fingerprint: s.emulator.fingerprint },
    });
    const error = await rejected(
      PveApiError,
      uploadIsoImage(ro, options(image), recordingReporter()),
    );
    await ro.close();
    expect(error.message).toBe(
      `POST ${s.emulator.url}/nodes/pve/storage/local/upload: HTTP 403 Permission check failed (/storage/local, Datastore.AllocateTemplate)`,
    );
  });

  it('a connection cut mid-upload: the whole upload is sent again', async () => {
    const image = await isoFile(work, 'boot.iso', 4 * MiB);
    // A TCP relay that cuts the first connection after 1 MiB, then relays faithfully.
    let connections = 0;
    const target = Number(s.emulator.hostPort.split(':')[1]);
    const relay = net.createServer((down) => {
      const first = ++connections === 1;
      const up = net.connect(target, '127.0.0.1');
      let seen = 0;
      down.on('data', (b: Buffer) => {
        seen += b.length;
        if (first && seen > MiB) {
          down.resetAndDestroy();
          up.destroy();
          return;
        }
        up.write(b);
      });
      up.pipe(down);
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const port = (relay.address() as net.AddressInfo).port;
    const viaRelay = client(s, undefined, `https://127.0.0.1:${port}/api2/json`);
    const out = recordingReporter();
    try {
      const r = await uploadIsoImage(viaRelay, options(image), out);
      expect(r).toMatchObject({ sent: true, attempts: 2 });
      expect(await sha256File(stored(r.filename))).toBe(await sha256File(image));
      expect(
        out.lines.some((l) =>
          /^warning: upload attempt 1 failed \(POST .*upload: .*\); sending it again in \d+ ms$/.test(
            l,
          ),
        ),
      ).toBe(true);
    } finally {
      await viaRelay.close();
      relay.close();
    }
  });

  it('never overwrites a file of the same name that a VM references', async () => {
    const image = await isoFile(work, 'boot.iso', MiB);
    const sha = await sha256File(image);
    const name = `diskless-${sha.slice(0, 8)}.iso`;
    await writeFile(stored(name), 'a different, shorter file');
    const read = await readConfig(api, { node: 'pve', vmid: 102 });
    await repointCd(api, { node: 'pve', vmid: 102 }, 'ide2', `local:iso/${name}`, read.digest);
    const error = await rejected(
      DisklessError,
      uploadIsoImage(api, options(image), recordingReporter()),
    );
    expect(error.message).toBe(
      `local:iso/${name} on the storage has 25 bytes, not the image's ${MiB}, and VM 102 references it: refusing to overwrite a file in use`,
    );
    expect(await readFile(stored(name), 'utf8')).toBe('a different, shorter file');
  });

  it('refuses a family name Proxmox would rename, and a storage without ISOs', async () => {
    const image = await isoFile(work, 'boot.iso', 4096);
    const bad = await rejected(
      InputError,
      uploadIsoImage(api, options(image, { family: 'my image' }), recordingReporter()),
    );
    expect(bad.message).toBe(
      'Invalid family "my image": expected letters, digits, ".", "_" or "-" (the ISO is named <family>-<sha8>.iso)',
    );
    const missing = await rejected(
      DisklessError,
      uploadIsoImage(api, options(image, { storage: 'nfs-isos' }), recordingReporter()),
    );
    expect(missing.message).toBe(
      'Storage "nfs-isos" is not on node "pve" (or the token may not see it): expected one of local',
    );
    expect(s.emulator.stats.uploadBytes).toBe(0);
  });
});

describe('retention', () => {
  it('deletes old family files no VM references, keeps the previous one and every one in use', async () => {
    const ship = async (seed: number) => {
      const image = await isoFile(work, `v${seed}.iso`, 64 * 1024, seed);
      return (await uploadIsoImage(api, options(image), recordingReporter())).volid;
    };
    const v1 = await ship(1);
    const v2 = await ship(2);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // ctime has whole seconds
    const v3 = await ship(3);
    const v4 = await ship(4);
    await writeFile(stored('other-family-00000000.iso'), 'not ours');
    const read = await readConfig(api, { node: 'pve', vmid: 101 });
    await repointCd(api, { node: 'pve', vmid: 101 }, 'ide2', v1, read.digest);

    const dry = recordingReporter();
    const planned = await pruneFamily(
      api,
      { node: 'pve', storage: 'local', family: 'diskless', current: v4, dryRun: true },
      dry,
    );
    expect(planned.deleted).toEqual([v2]);
    await stat(stored(v2.slice('local:iso/'.length)));

    const out = recordingReporter();
    const r = await pruneFamily(
      api,
      {
        node: 'pve',
        storage: 'local',
        family: 'diskless',
        current: v4,
        dryRun: false,
        wait: fastWait,
      },
      out,
    );
    expect(r.deleted).toEqual([v2]);
    expect(r.kept.sort()).toEqual([v1, v3, v4].sort());
    expect(out.lines).toContain(`keep ${v1}: in use by VM 101`);
    expect(out.lines).toContain(`keep ${v3}: the previous image, for a rollback`);
    const listed = (
      await api.call<{ volid: string }[]>('GET', '/nodes/pve/storage/local/content')
    ).map((i) => i.volid);
    expect(listed.sort()).toEqual([v1, v3, v4, 'local:iso/other-family-00000000.iso'].sort());
  });
});
