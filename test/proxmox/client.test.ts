/**
 * The Proxmox client against the emulator over real HTTPS: how it trusts the server
 * (never silently insecure), the token and its masking, errors as one line naming the
 * call, the config digest, restarts and the guest agent's address.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NetworkError } from '../../src/drive/api-error.js';
import { DisklessError, InputError } from '../../src/errors.js';
import {
  isosInUse,
  listVms,
  PveApi,
  PveApiError,
  readConfig,
  repointCd,
  restartVm,
  vmState,
} from '../../src/proxmox/index.js';
import { rejected, thrown } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';
import { auditor } from '../emulator/pve-helpers.js';
import { client, fastWait, isoFile, root, startPve, type StartedPve } from './helpers.js';

let s: StartedPve;
let api: PveApi | undefined;
beforeEach(async () => {
  s = await startPve();
});
afterEach(async () => {
  await api?.close();
  api = undefined;
  await s.stop();
});

describe('trust', () => {
  it('refuses the self-signed certificate by default, in one line naming the call', async () => {
    api = new PveApi({ url: s.emulator.url, tokenId: root.id, secret: root.secret, tls: {} });
    const error = await rejected(NetworkError, api.call('GET', '/version'));
    expect(error.message).toBe(
      `GET ${s.emulator.url}/version: DEPTH_ZERO_SELF_SIGNED_CERT: the server's certificate is not trusted; name its CA (tls-ca-file) or pin its fingerprint (tls-fingerprint)`,
    );
  });

  it('trusts a CA file, a pinned fingerprint, or insecure when asked by name', async () => {
    const dir = await tempDir('pve-ca');
    const ca = path.join(dir, 'pve-root-ca.pem');
    await writeFile(ca, s.emulator.certificate);
    for (const tls of [
      { caFile: ca },
      { fingerprint: s.emulator.fingerprint.replace(/:/g, '').toLowerCase() },
      { insecure: true },
    ]) {
      const c = client(s, tls);
      expect(await c.call('GET', '/version')).toMatchObject({ release: '8.4' });
      await c.close();
    }
  });

  it('refuses a certificate that is not the pinned one', async () => {
    api = client(s, { fingerprint: 'AB'.repeat(32) });
    const error = await rejected(NetworkError, api.call('GET', '/version'));
    expect(error.message).toContain(`not the pinned ${'AB:'.repeat(31)}AB`);
  });

  it('refuses bad TLS inputs before any request', () => {
    expect(thrown(InputError, () => client(s, { fingerprint: 'xyz' })).message).toBe(
      'Invalid tls-fingerprint "xyz": expected the SHA-256 fingerprint of the server\'s certificate, 64 hex digits (colons allowed)',
    );
    expect(
      thrown(InputError, () => client(s, { insecure: true, fingerprint: s.emulator.fingerprint }))
        .input,
    ).toBe('tls-ca-file');
    expect(thrown(InputError, () => client(s, { caFile: '/nonexistent/ca.pem' })).message).toBe(
      'Invalid tls-ca-file "/nonexistent/ca.pem": ENOENT; expected a readable PEM file',
    );
  });
});

describe('token and errors', () => {
  it('refuses a plain-HTTP URL and a malformed token ID', () => {
    expect(
      thrown(
        InputError,
        () => new PveApi({ url: 'http://pve:8006', tokenId: root.id, secret: 'x', tls: {} }),
      ).message,
    ).toBe(
      'Invalid api-url "http://pve:8006": expected https://host:8006 (Proxmox serves its API over HTTPS only)',
    );
    const e = thrown(
      InputError,
      () => new PveApi({ url: s.emulator.url, tokenId: 'root', secret: 'x', tls: {} }),
    );
    expect(e.input).toBe('token-id');
  });

  it('a wrong secret: 401 in one line, the secret in no message', async () => {
    api = new PveApi({
      url: s.emulator.url,
      tokenId: root.id,
      secret: 'wrong-secret',
      tls: { fingerprint: s.emulator.fingerprint },
    });
    const error = await rejected(PveApiError, api.call('GET', '/cluster/resources'));
    expect(error.message).toBe(
      `GET ${s.emulator.url}/cluster/resources: HTTP 401 Authentication failed!`,
    );
    expect(error.message).not.toContain('wrong-secret');
  });

  it('Proxmox errors keep their text and the parameter errors', async () => {
    api = client(s);
    const missing = await rejected(PveApiError, api.call('GET', '/nodes/pve/qemu/777/config'));
    expect(missing.message).toBe(
      `GET ${s.emulator.url}/nodes/pve/qemu/777/config: HTTP 500 Configuration file 'nodes/pve/qemu-server/777.conf' does not exist`,
    );
    const bad = await rejected(
      PveApiError,
      api.call('PUT', '/nodes/pve/qemu/101/config', { ide2: 'local:iso/x.iso' }),
    );
    expect(bad.message).toBe(
      `PUT ${s.emulator.url}/nodes/pve/qemu/101/config: HTTP 400 Parameter verification failed. (ide2: explicit 'media=cdrom' is required for iso images)`,
    );
    const auditorApi = new PveApi({
      url: s.emulator.url,
      tokenId: auditor.id,
      secret: auditor.secret,
      tls: { fingerprint: s.emulator.fingerprint },
    });
    const denied = await rejected(
      PveApiError,
      auditorApi.call('POST', '/nodes/pve/qemu/101/status/reset'),
    );
    await auditorApi.close();
    expect(denied.message).toBe(
      `POST ${s.emulator.url}/nodes/pve/qemu/101/status/reset: HTTP 403 Permission check failed (/vms/101, VM.PowerMgmt)`,
    );
  });
});

describe('VMs', () => {
  async function shipIso(name: string): Promise<string> {
    const dir = path.join(s.dataDir, 'storage', 'local', 'template', 'iso');
    await isoFile(dir, name, 8192);
    return `local:iso/${name}`;
  }

  it('lists the VMs and their CDs, repoints with the digest, resets, reads the agent address', async () => {
    api = client(s);
    const volid = await shipIso('diskless-00000001.iso');
    const vms = await listVms(api);
    expect(vms.map((v) => [v.vmid, v.name, v.tags])).toEqual([
      [101, 'client-a', ['diskless']],
      [102, 'client-b', []],
    ]);
    const before = await readConfig(api, { node: 'pve', vmid: 101 });
    expect(before.cds).toEqual([{ key: 'ide2', volume: 'none' }]);
    await repointCd(api, { node: 'pve', vmid: 101 }, 'ide2', volid, before.digest);
    const after = await readConfig(api, { node: 'pve', vmid: 101 });
    expect(after.cds).toEqual([{ key: 'ide2', volume: volid }]);
    expect(after.config.ide2).toBe(`${volid},media=cdrom,size=8K`);

    const state = await vmState(api, { node: 'pve', vmid: 101 });
    expect(state).toMatchObject({ running: true, address: '10.0.0.11' });
    await restartVm(api, { node: 'pve', vmid: 101 }, 'reset', fastWait);
    expect((await vmState(api, { node: 'pve', vmid: 101 })).pid).toBe(state.pid);
    await restartVm(api, { node: 'pve', vmid: 101 }, 'reboot', fastWait);
    expect((await vmState(api, { node: 'pve', vmid: 101 })).pid).not.toBe(state.pid);
    // VM 102 has no agent and is stopped: no address, and a reset is refused by Proxmox.
    expect(await vmState(api, { node: 'pve', vmid: 102 })).toMatchObject({
      running: false,
      address: undefined,
    });
    const refused = await rejected(
      PveApiError,
      restartVm(api, { node: 'pve', vmid: 102 }, 'reset', fastWait),
    );
    expect(refused.detail).toBe('VM 102 not running');
    expect([...(await isosInUse(api)).entries()]).toEqual([[volid, [101]]]);
  });

  it('a config changed by someone else since it was read is refused, not overwritten', async () => {
    api = client(s);
    const volid = await shipIso('diskless-00000002.iso');
    const read = await readConfig(api, { node: 'pve', vmid: 102 });
    s.emulator.editConfig(102, { description: 'edited by an admin' });
    const error = await rejected(
      DisklessError,
      repointCd(api, { node: 'pve', vmid: 102 }, 'ide2', volid, read.digest),
    );
    expect(error.message).toMatch(
      /^VM 102: its config changed while the rollout read it \(digest [0-9a-f]{8}… is stale\): PUT .*: HTTP 500 checksum mismatch \(file change by other user\?\)$/,
    );
    const now = await readConfig(api, { node: 'pve', vmid: 102 });
    expect(now.config).toMatchObject({
      ide2: 'none,media=cdrom',
      description: 'edited by an admin',
    });
  });

  it("a start whose ISO is gone fails its task with Proxmox's text", async () => {
    api = client(s);
    const volid = await shipIso('diskless-00000003.iso');
    const read = await readConfig(api, { node: 'pve', vmid: 102 });
    await repointCd(api, { node: 'pve', vmid: 102 }, 'ide2', volid, read.digest);
    await api.call('DELETE', `/nodes/pve/storage/local/content/${volid}`, { delay: 5 });
    const error = await rejected(
      DisklessError,
      restartVm(api, { node: 'pve', vmid: 102 }, 'start', fastWait),
    );
    expect(error.message).toMatch(
      /^VM 102 start: the Proxmox task failed: volume 'local:iso\/diskless-00000003.iso' does not exist \[UPID:pve:.*:qmstart:102:root@pam!ci:\]$/,
    );
  });
});
