/**
 * Unit tests of the client's pure parts: the upload's multipart framing (parts in the
 * order Proxmox parses them), CD-ROM drives read from a config, the artifact name,
 * UPIDs, fingerprints, and the emulator's file name normalisation and size format.
 */
import { describe, expect, it } from 'vitest';
import { DisklessError, InputError } from '../../src/errors.js';
import { normalizeFilename } from '../../src/emulator/pve/storage.js';
import { formatSize } from '../../src/emulator/pve/vms.js';
import { uploadFraming } from '../../src/proxmox/api.js';
import { artifactName, cdDrives, normalizeFingerprint, upidNode } from '../../src/proxmox/index.js';
import { isTransientPve, PveApiError } from '../../src/proxmox/api-error.js';
import { taskSucceeded } from '../../src/proxmox/tasks.js';
import { thrown } from '../helpers/errors.js';

describe('upload framing', () => {
  it('puts content, checksum-algorithm, checksum, then the file part, and closes after the file', () => {
    const { head, tail } = uploadFraming('BND', 'diskless-1a2b3c4d.iso', {
      algorithm: 'sha256',
      value: 'ab'.repeat(32),
    });
    const text = head.toString();
    const names = [...text.matchAll(/; name="([^"]+)"/g)].map((m) => m[1]);
    expect(names).toEqual(['content', 'checksum-algorithm', 'checksum', 'filename']);
    expect(text).toContain(
      'Content-Disposition: form-data; name="filename"; filename="diskless-1a2b3c4d.iso"\r\n',
    );
    expect(text.endsWith('\r\n\r\n')).toBe(true);
    expect(tail.toString()).toBe('\r\n--BND--\r\n');
  });
});

describe('config reading', () => {
  it('finds the CD-ROM drives (media=cdrom) and their volumes, whatever the key', () => {
    expect(
      cdDrives({
        ide2: 'local:iso/a.iso,media=cdrom,size=300M',
        sata1: 'none,media=cdrom',
        scsi0: 'local-lvm:vm-101-disk-0,size=8G',
        ide0: 'cephfs:iso/b.iso,media=cdrom',
        name: 'media=cdrom',
        digest: 'x',
      }),
    ).toEqual([
      { key: 'ide0', volume: 'cephfs:iso/b.iso' },
      { key: 'ide2', volume: 'local:iso/a.iso' },
      { key: 'sata1', volume: 'none' },
    ]);
  });

  it('names artifacts by the sha256 start and reads the node of a UPID', () => {
    expect(artifactName('diskless', 'deadbeef'.repeat(8))).toBe('diskless-deadbeef.iso');
    expect(upidNode('UPID:pve2:0000ABCD:00012345:65A1B2C3:imgcopy::root@pam!ci:')).toBe('pve2');
    expect(thrown(DisklessError, () => upidNode('null')).message).toBe(
      'Proxmox answered "null": expected a task ID (UPID:node:…)',
    );
    expect([
      taskSucceeded('OK'),
      taskSucceeded('WARNINGS: 2'),
      taskSucceeded('unexpected status'),
    ]).toEqual([true, true, false]);
  });
});

describe('errors and trust', () => {
  it('retries only the network and gateway statuses: a Proxmox 500 is a refusal', () => {
    expect(isTransientPve(new PveApiError(500, 'VM is locked (backup)', 'PUT x'))).toBe(false);
    expect(isTransientPve(new PveApiError(503, 'Service Unavailable', 'GET x'))).toBe(true);
    expect(isTransientPve(new PveApiError(595, 'Connection refused', 'GET x'))).toBe(true);
    expect(
      new PveApiError(400, 'Parameter verification failed.', 'PUT x', { ide2: 'bad\n' }).message,
    ).toBe('PUT x: HTTP 400 Parameter verification failed. (ide2: bad)');
  });

  it('normalises a fingerprint and refuses a malformed one naming the input', () => {
    expect(normalizeFingerprint('ab'.repeat(32))).toBe(`${'AB:'.repeat(31)}AB`);
    expect(thrown(InputError, () => normalizeFingerprint('AB:CD')).input).toBe('tls-fingerprint');
  });
});

describe('emulator rules', () => {
  it('normalises upload names as Proxmox does and formats sizes as it appends them', () => {
    expect(normalizeFilename('My Boot(2).ISO')).toBe('My_Boot_2_.ISO');
    expect(normalizeFilename('C:\\dir\\x y.iso')).toBe('x_y.iso');
    expect([
      formatSize(300 * 2 ** 20),
      formatSize(2 ** 30),
      formatSize(8192),
      formatSize(1000),
    ]).toEqual(['300M', '1G', '8K', '1000']);
  });
});
