/**
 * The Proxmox VE front end over HTTPS, call by call: tokens and their 401s, the upload's
 * multipart order and framing as pve-http-server parses them, file name normalisation,
 * tasks and their logs, delete, the config call (async and sync, digest, aliases),
 * power actions, the guest agent, and errors in Proxmox's shape.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/files.js';
import {
  auditor,
  pve,
  root,
  startPve,
  tokenHeader,
  waitTask,
  type StartedPve,
} from './pve-helpers.js';

let s: StartedPve;
beforeEach(async () => {
  s = await startPve();
});
afterEach(async () => {
  await s.stop();
});

const B = 'xYzBoundary42';
function part(name: string, value: string): string {
  return `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}
function filePart(filename: string, data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${B}\r\nContent-Disposition: form-data; name="filename"; filename="${filename}"\r\n\r\n`,
    ),
    data,
    Buffer.from(`\r\n--${B}--\r\n`),
  ]);
}

async function upload(
  body: Buffer,
  o: { type?: string; as?: typeof root; headers?: Record<string, string> } = {},
) {
  const res = await request(`${s.emulator.url}/nodes/pve/storage/local/upload`, {
    method: 'POST',
    dispatcher: s.agent,
    headers: {
      authorization: tokenHeader(o.as ?? root),
      'content-type': o.type ?? `multipart/form-data; boundary=${B}`,
      ...o.headers,
    },
    body,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    statusText: res.statusText,
    json: JSON.parse(text || 'null') as Record<string, unknown> | null,
  };
}

const ISO = Buffer.concat([
  Buffer.from('CD001'),
  Buffer.alloc(70_000, 3),
  Buffer.from(`\r\n--${B}`),
]);

describe('tokens', () => {
  it('401 No ticket without a token, Authentication failed! with a wrong one, both with an empty body', async () => {
    const none = await pve(s, 'GET', '/nodes', { as: null });
    expect([none.status, none.statusText, none.body]).toEqual([401, 'No ticket', '']);
    const wrong = await pve(s, 'GET', '/nodes', { as: { id: root.id, secret: 'nope' } });
    expect([wrong.status, wrong.statusText, wrong.body]).toEqual([
      401,
      'Authentication failed!',
      '',
    ]);
  });

  it('takes a space for the first "=" and a URI-escaped value, as pveproxy does', async () => {
    const r = await pve(s, 'GET', '/nodes', {
      as: null,
      headers: { authorization: `PVEAPIToken ${encodeURIComponent(`${root.id}=${root.secret}`)}` },
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ data: [{ node: 'pve', status: 'online', type: 'node' }] });
  });
});

describe('upload', () => {
  it('stores the file under its normalised name when the checksum matches; the bytes are exact', async () => {
    const body = Buffer.concat([
      Buffer.from(
        part('content', 'iso') +
          part('checksum-algorithm', 'sha256') +
          part('checksum', sha256(ISO)),
      ),
      filePart('My Boot(2).ISO', ISO),
    ]);
    const r = await upload(body);
    expect(r.status).toBe(200);
    const task = await waitTask(s, String(r.json?.data));
    expect(task).toMatchObject({
      type: 'imgcopy',
      id: '',
      status: 'stopped',
      exitstatus: 'OK',
      user: 'root@pam',
      tokenid: 'ci',
    });
    const file = path.join(s.dataDir, 'storage', 'local', 'template', 'iso', 'My_Boot_2_.ISO');
    expect(sha256(await readFile(file))).toBe(sha256(ISO));
    const log = await pve(
      s,
      'GET',
      `/nodes/pve/tasks/${encodeURIComponent(String(r.json?.data))}/log?limit=0`,
    );
    const lines = (log.json?.data as { n: number; t: string }[]).map((l) => l.t);
    expect(lines[0]).toMatch(/^starting file import from: /);
    expect(lines).toContain(`file size is: ${ISO.length}`);
    expect(lines.at(-1)).toBe('TASK OK');
    expect(log.json?.total).toBe(lines.length);
    const page = await pve(
      s,
      'GET',
      `/nodes/pve/tasks/${encodeURIComponent(String(r.json?.data))}/log?start=1&limit=2`,
    );
    expect((page.json?.data as { n: number }[]).map((l) => l.n)).toEqual([2, 3]);
  });

  it("refuses parts out of Proxmox's order, a file part alone, a wrong extension", async () => {
    const swapped = await upload(
      Buffer.concat([
        Buffer.from(
          part('content', 'iso') + part('checksum', 'ab') + part('checksum-algorithm', 'sha256'),
        ),
        filePart('a.iso', ISO),
      ]),
    );
    expect([swapped.status, swapped.statusText]).toEqual([
      500,
      `wrong Content-Disposition 'Content-Disposition: form-data; name="checksum-algorithm"'`,
    ]);
    const named = await upload(
      Buffer.concat([
        Buffer.from(part('content', 'iso') + part('filename', 'a.iso')),
        filePart('a.iso', ISO),
      ]),
    );
    expect([named.status, named.statusText]).toEqual([500, "wrong field name 'filename'"]);
    const alone = await upload(filePart('a.iso', ISO));
    expect([alone.status, alone.statusText, alone.json?.errors]).toEqual([
      400,
      'Parameter verification failed.',
      { content: 'property is missing and it is not optional' },
    ]);
    const ext = await upload(
      Buffer.concat([Buffer.from(part('content', 'iso')), filePart('a.qcow2', ISO)]),
    );
    expect([ext.status, ext.json?.errors]).toEqual([400, { filename: 'wrong file extension' }]);
    const algo = await upload(
      Buffer.concat([
        Buffer.from(
          part('content', 'iso') + part('checksum-algorithm', 'crc32') + part('checksum', 'x'),
        ),
        filePart('a.iso', ISO),
      ]),
    );
    expect(algo.json?.errors).toEqual({
      'checksum-algorithm':
        "value 'crc32' does not have a value in the enumeration 'md5, sha1, sha224, sha256, sha384, sha512'",
    });
    const listed = await pve(s, 'GET', '/nodes/pve/storage/local/content');
    expect(listed.json?.data).toEqual([]);
  });

  it('drops the connection on a body that is not multipart; 403 for a token without the privilege', async () => {
    await expect(upload(ISO, { type: 'application/octet-stream' })).rejects.toThrow(
      /other side closed|socket hang up|ECONNRESET/,
    );
    const denied = await upload(
      Buffer.concat([Buffer.from(part('content', 'iso')), filePart('a.iso', ISO)]),
      { as: auditor },
    );
    expect([denied.status, denied.statusText]).toEqual([
      403,
      'Permission check failed (/storage/local, Datastore.AllocateTemplate)',
    ]);
  });
});

describe('content and tasks', () => {
  it('deletes a volume through an imgdel task; a missing one only warns; delay waits', async () => {
    const body = Buffer.concat([Buffer.from(part('content', 'iso')), filePart('a.iso', ISO)]);
    await waitTask(s, String((await upload(body)).json?.data));
    const denied = await pve(s, 'DELETE', '/nodes/pve/storage/local/content/local:iso/a.iso', {
      as: auditor,
    });
    expect([denied.status, denied.statusText]).toEqual([
      403,
      'Permission check failed (/storage/local, Datastore.Allocate)',
    ]);
    const info = await pve(s, 'GET', '/nodes/pve/storage/local/content/local%3Aiso%2Fa.iso');
    expect(info.json?.data).toMatchObject({ size: ISO.length, format: 'iso' });
    const del = await pve(s, 'DELETE', '/nodes/pve/storage/local/content/iso/a.iso', {
      form: undefined,
    });
    expect(String(del.json?.data)).toMatch(/:imgdel:local:root@pam!ci:$/);
    expect((await waitTask(s, String(del.json?.data))).exitstatus).toBe('OK');
    const again = await pve(
      s,
      'DELETE',
      '/nodes/pve/storage/local/content/local:iso/a.iso?delay=5',
    );
    expect(again.json).toEqual({ data: null });
    const listed = await pve(s, 'GET', '/nodes/pve/storage/local/content?content=iso');
    expect(listed.json?.data).toEqual([]);
  });

  it("answers an unknown or malformed UPID with Proxmox's 400s", async () => {
    const bogus = await pve(s, 'GET', '/nodes/pve/tasks/nonsense/status');
    expect(bogus.json?.errors).toEqual({ upid: 'unable to parse worker upid' });
    const unknown = await pve(
      s,
      'GET',
      `/nodes/pve/tasks/${encodeURIComponent('UPID:pve:00000001:00000001:00000001:qmstart:101:root@pam:')}/status`,
    );
    expect(unknown.json?.errors).toEqual({ upid: 'no such task' });
  });
});

describe('VM config', () => {
  it("POST runs a qmconfig task; its failures are the task's; background_delay returns null", async () => {
    const missing = await pve(s, 'POST', '/nodes/pve/qemu/101/config', {
      form: { ide2: 'local:iso/gone.iso,media=cdrom' },
    });
    expect(String(missing.json?.data)).toMatch(/:qmconfig:101:root@pam!ci:$/);
    expect((await waitTask(s, String(missing.json?.data))).exitstatus).toBe(
      "volume 'local:iso/gone.iso' does not exist",
    );
    const ok = await pve(s, 'POST', '/nodes/pve/qemu/101/config', {
      form: { description: 'hello', background_delay: '5' },
    });
    expect(ok.json).toEqual({ data: null });
    const cfg = await pve(s, 'GET', '/nodes/pve/qemu/101/config');
    expect(cfg.json?.data).toMatchObject({
      description: 'hello',
      ide2: 'none,media=cdrom',
      memory: 1024,
    });
  });

  it('a stale digest is refused before the task, for POST and PUT alike; delete and cdrom work', async () => {
    const before = (await pve(s, 'GET', '/nodes/pve/qemu/102/config')).json?.data as {
      digest: string;
    };
    await pve(s, 'PUT', '/nodes/pve/qemu/102/config', {
      form: { delete: 'memory', cdrom: 'none' },
    });
    for (const method of ['POST', 'PUT'] as const) {
      const r = await pve(s, method, '/nodes/pve/qemu/102/config', {
        form: { name: 'x', digest: before.digest },
      });
      expect([r.status, r.statusText]).toEqual([
        500,
        'checksum mismatch (file change by other user?)',
      ]);
    }
    const cfg = (await pve(s, 'GET', '/nodes/pve/qemu/102/config')).json?.data as Record<
      string,
      unknown
    >;
    expect(cfg).toEqual({
      name: 'client-b',
      ide2: 'none,media=cdrom',
      digest: expect.stringMatching(/^[0-9a-f]{40}$/) as string,
    });
  });

  it('refuses unknown keys and non-integers with the parameter errors', async () => {
    const r = await pve(s, 'PUT', '/nodes/pve/qemu/101/config', {
      form: { bogus: '1', memory: 'lots' },
    });
    expect(r.json?.errors).toEqual({
      bogus:
        'property is not defined in schema and the schema does not allow additional properties',
      memory: "type check ('integer') failed - got 'lots'",
    });
    const low = await pve(s, 'GET', '/nodes/pve/qemu/99/config');
    expect(low.json?.errors).toEqual({ vmid: 'value must have a minimum value of 100' });
  });
});

describe('power and agent', () => {
  it('start of a running VM fails its task; reset of a stopped one is a 500', async () => {
    const start = await pve(s, 'POST', '/nodes/pve/qemu/101/status/start');
    expect((await waitTask(s, String(start.json?.data))).exitstatus).toBe('VM 101 already running');
    const reset = await pve(s, 'POST', '/nodes/pve/qemu/102/status/reset');
    expect([reset.status, reset.statusText]).toEqual([500, 'VM 102 not running']);
    const started = await pve(s, 'POST', '/nodes/pve/qemu/102/status/start');
    expect((await waitTask(s, String(started.json?.data))).exitstatus).toBe('OK');
    const now = await pve(s, 'GET', '/nodes/pve/qemu/102/status/current');
    expect(now.json?.data).toMatchObject({
      status: 'running',
      qmpstatus: 'running',
      pid: expect.any(Number) as number,
    });
    const shut = await pve(s, 'POST', '/nodes/pve/qemu/102/status/shutdown', {
      form: { forceStop: '1' },
    });
    expect((await waitTask(s, String(shut.json?.data))).exitstatus).toBe('OK');
    expect(
      ((await pve(s, 'GET', '/nodes/pve/qemu/102/status/current')).json?.data as { status: string })
        .status,
    ).toBe('stopped');
  });

  it("the agent answers with the address, or one of Proxmox's three 500s", async () => {
    const a = await pve(s, 'GET', '/nodes/pve/qemu/101/agent/network-get-interfaces');
    const ifaces = (
      a.json?.data as { result: { name: string; 'ip-addresses': { 'ip-address': string }[] }[] }
    ).result;
    expect(ifaces.map((i) => [i.name, i['ip-addresses'][0]?.['ip-address']])).toEqual([
      ['lo', '127.0.0.1'],
      ['eth0', '10.0.0.11'],
    ]);
    const none = await pve(s, 'GET', '/nodes/pve/qemu/102/agent/network-get-interfaces');
    expect([none.status, none.statusText]).toEqual([500, 'No QEMU guest agent configured']);
    await pve(s, 'POST', '/nodes/pve/qemu/101/status/stop').then((r) =>
      waitTask(s, String(r.json?.data)),
    );
    const down = await pve(s, 'GET', '/nodes/pve/qemu/101/agent/network-get-interfaces');
    expect([down.status, down.statusText]).toEqual([500, 'VM 101 is not running']);
  });
});

describe("errors in Proxmox's shape", () => {
  it('501 for an unknown call, a body on GET; 506 for another body type; the message in the body', async () => {
    const unknown = await pve(s, 'GET', '/nodes/pve/lxc');
    expect([unknown.status, unknown.statusText, unknown.json]).toEqual([
      501,
      "Method 'GET /nodes/pve/lxc' not implemented",
      { data: null, message: "Method 'GET /nodes/pve/lxc' not implemented\n" },
    ]);
    const typed = await pve(s, 'PUT', '/nodes/pve/qemu/101/config', {
      headers: { 'content-type': 'text/plain' },
      form: { name: 'x' },
    });
    expect(typed.status).toBe(506);
    const bad = await pve(s, 'GET', '/cluster/resources?type=everything');
    expect(bad.json?.errors).toEqual({
      type: "value 'everything' does not have a value in the enumeration 'vm, storage, node, sdn'",
    });
  });
});
