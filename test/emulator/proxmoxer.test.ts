/**
 * A real third-party client drives the Proxmox VE emulator: proxmoxer (Debian's
 * python3-proxmoxer 1.2.0, installed by .ci/run) with an API token over HTTPS uploads an
 * ISO with its sha256 (and once with a wrong one, which the task reports), polls the
 * tasks, lists the storage, repoints a VM's CD with the config digest (a stale digest
 * and a missing media=cdrom are refused), resets the VM and reads its status.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { sha256 } from '../../src/files.js';
import { run } from '../../src/process/run.js';
import { root, startPve, type StartedPve } from './pve-helpers.js';

const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(import.meta.dirname, 'proxmoxer', 'client.py');

interface TaskSeen {
  upid?: string;
  status: Record<string, unknown>;
  log: string[];
}
type Obj = Record<string, unknown>;
/** What client.py prints. */
interface Out {
  upload: TaskSeen;
  bad_upload: TaskSeen;
  content: Obj[];
  volume: Obj;
  config_before: Obj;
  set: unknown;
  config_after: Obj;
  stale: string;
  no_media: string;
  status_before: Obj;
  reset: TaskSeen;
  status_after: Obj;
  resources: { vmid: number }[];
  wrong_secret: string;
  missing_vm: string;
}

let s: StartedPve | undefined;
let work: string | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
  if (work) await rm(work, { recursive: true, force: true });
  work = undefined;
});

it('proxmoxer uploads, lists, repoints the CD with the digest, resets and polls tasks', async () => {
  s = await startPve();
  work = await mkdtemp(path.join(tmpdir(), 'proxmoxer-'));
  const iso = path.join(work, 'diskless-1a2b3c4d.iso');
  const content = Buffer.concat([
    Buffer.from('diskless boot image\n'),
    Buffer.alloc(3 * 2 ** 20, 7),
  ]);
  await writeFile(iso, content);
  const [user, tokenName] = root.id.split('!');
  const { stdout } = await run(
    PYTHON,
    [CLIENT, s.emulator.hostPort, user ?? '', tokenName ?? '', iso],
    {
      env: { ...process.env, PVE_TOKEN_SECRET: root.secret },
      debianPackage: 'python3-proxmoxer',
    },
  );
  expect(stdout).not.toContain(root.secret);
  const out = JSON.parse(stdout) as Out;

  expect(out.upload.upid).toMatch(
    /^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:imgcopy::root@pam!ci:$/,
  );
  expect(out.upload.status).toMatchObject({
    status: 'stopped',
    exitstatus: 'OK',
    user: 'root@pam',
    tokenid: 'ci',
  });
  expect(out.upload.log.at(-1)).toBe('TASK OK');
  expect(out.upload.log).toContain(`file size is: ${content.length}`);
  expect(out.bad_upload.status.exitstatus).toBe(
    `checksum mismatch: got '${sha256(content)}' != expect '${'0'.repeat(64)}'`,
  );
  expect(out.bad_upload.log.at(-1)).toMatch(/^TASK ERROR: checksum mismatch/);

  expect(out.content).toEqual([
    expect.objectContaining({
      volid: 'local:iso/diskless-1a2b3c4d.iso',
      size: content.length,
      format: 'iso',
      content: 'iso',
    }),
  ]);
  expect(out.volume).toMatchObject({ size: content.length, format: 'iso' });

  expect(out.config_before).toMatchObject({ name: 'client-a', ide2: 'none,media=cdrom' });
  expect(out.config_before.digest).toMatch(/^[0-9a-f]{40}$/);
  expect(out.set).toBeNull();
  expect(out.config_after.ide2).toBe(
    `local:iso/diskless-1a2b3c4d.iso,media=cdrom,size=${content.length}`,
  );
  expect(out.config_after.digest).not.toBe(out.config_before.digest);
  expect(out.stale).toBe(
    '500 Internal Server Error: checksum mismatch (file change by other user?)',
  );
  expect(out.no_media).toBe('400 Bad Request: Parameter verification failed.');

  expect(out.status_before).toMatchObject({ status: 'running', qmpstatus: 'running', agent: 1 });
  expect(out.reset.status.exitstatus).toBe('OK');
  expect(out.status_after.pid).toBe(out.status_before.pid); // reset keeps the QEMU process
  expect(out.resources.map((r) => r.vmid)).toEqual([101, 102]);

  // (proxmoxer shows the empty body of a 401 as " - b''", as it does with Proxmox)
  expect(out.wrong_secret).toBe("401 Unauthorized: Authentication failed! - b''");
  expect(out.missing_vm).toBe(
    "500 Internal Server Error: Configuration file 'nodes/pve/qemu-server/999.conf' does not exist",
  );
});
