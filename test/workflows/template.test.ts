// The repository's template/ and settings/, rendered by the real build-rootfs against a
// fixture master root the way the build job passes them (run as root, like test/rootfs).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { fstabMounts } from '../../src/rootfs/fstab.js';
import { loadTemplate } from '../../src/rootfs/overlay.js';
import { buildReport, makeMaster, options, tempDir } from '../rootfs/fixture.js';
import { REPO } from './workflows.js';
import { list } from '../../src/inputs/fields.js';
import type { BuildRootfsReport } from '../../src/rootfs/options.js';
import { recordingReporter } from '../../src/report.js';

const TEMPLATE = path.join(REPO, 'template');
const SETTINGS = path.join(REPO, 'settings');
const BUILT_IN = ['NFS_SERVER', 'NFS_ROOT', 'USR_ROOT', 'CLIENT_HOSTNAME', 'MASTER_HOSTNAME'];

function settings(name: string): string {
  return readFileSync(path.join(SETTINGS, name), 'utf8');
}

/** The non-comment lines of a settings file. */
function entries(name: string): string[] {
  return list().parse(settings(name));
}

async function templateFiles(dir = TEMPLATE, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await templateFiles(dir, child)));
    else out.push(child);
  }
  return out.sort();
}

describe('the template and its settings', () => {
  it('use only the built-in placeholders and those settings/template-values gives', async () => {
    const given = entries('template-values').map((l) => l.slice(0, l.indexOf('=')));
    const used = new Set<string>();
    for (const file of (await templateFiles()).filter((f) => f.endsWith('.tmpl'))) {
      const text = await readFile(path.join(TEMPLATE, file), 'utf8');
      for (const m of text.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)) used.add(m[1] ?? '');
    }
    expect([...used].filter((n) => !BUILT_IN.includes(n) && !given.includes(n))).toEqual([]);
    // and settings/template-values holds nothing the template does not use
    expect(given.filter((n) => !used.has(n))).toEqual([]);
  });

  it('keep documentation out of the overlay (every file lands in the client root)', async () => {
    const files = await templateFiles();
    expect(files.every((f) => f.startsWith('etc/'))).toBe(true);
    expect(files.filter((f) => /readme|\.md$/i.test(f))).toEqual([]);
  });

  it('fail to render with an unknown placeholder (the check above can fail)', async () => {
    const values = Object.fromEntries(BUILT_IN.map((n) => [n, { value: 'x', input: n }]));
    await expect(loadTemplate(TEMPLATE, values)).rejects.toThrow(
      /unknown placeholder \{\{(NAMESERVER|SYSLOG_SERVER)\}\}/,
    );
    await expect(loadTemplate(TEMPLATE, values)).rejects.toBeInstanceOf(DisklessError);
  });
});

describe('build-rootfs with the template and settings, as the build job runs it', () => {
  let master: string;
  let target: string;
  let state: string;
  let root: string;
  let outputs: BuildRootfsReport['outputs'];

  beforeAll(async () => {
    master = await makeMaster();
    target = path.join(await tempDir('target'), 'clients');
    state = await tempDir('state');
    const report = await buildReport(
      options({
        source: master,
        target,
        template: TEMPLATE,
        'state-dir': state,
        'nfs-server': '10.0.0.1',
        'client-hostname': 'app',
        'var-dirs': settings('var-dirs'),
        'template-values': settings('template-values'),
      }),
      recordingReporter(),
    );
    outputs = report.outputs;
    root = outputs.root;
  });

  afterAll(async () => {
    for (const dir of [master, path.dirname(target), state]) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function client(rel: string): Promise<string> {
    return readFile(path.join(root, rel), 'utf8');
  }

  it('builds a release with every template file rendered', async () => {
    expect(outputs.changed).toBe(true);
    for (const file of await templateFiles()) {
      const text = await client(file.replace(/\.tmpl$/, ''));
      expect(text, file).not.toMatch(/\{\{|\}\}/);
    }
    await expect(readFile(path.join(root, 'etc/fstab.tmpl'))).rejects.toThrow(/ENOENT/);
  });

  it('mounts /usr read-only from the master with options klibc understands, and a /home of its own', async () => {
    const mounts = (await client('etc/fstab'))
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/));
    expect(mounts).toEqual([
      [`10.0.0.1:${master}/usr`, '/usr', 'nfs', 'ro,nolock,tcp,vers=3,port=2049', '0', '0'],
      ['tmpfs', '/home', 'tmpfs', 'mode=0755,size=64m', '0', '0'],
      ['tmpfs', '/var', 'tmpfs', 'mode=0755,size=256m', '0', '0'],
      ['tmpfs', '/tmp', 'tmpfs', 'mode=1777,size=25%,nosuid,nodev', '0', '0'],
    ]);
    // / is the initramfs's (nfsroot=), never fstab's
    expect(mounts.some((m) => m[1] === '/')).toBe(false);
  });

  it('configures the initramfs for an NFS boot from this build', async () => {
    const conf = Object.fromEntries(
      (await client('etc/initramfs-tools/initramfs.conf'))
        .split('\n')
        .filter((l) => /^[A-Z]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(conf).toMatchObject({
      BOOT: 'nfs',
      MODULES: 'netboot',
      COMPRESS: 'gzip',
      NFSROOT: `10.0.0.1:${target}/current`,
    });
  });

  it('names the client and the master, and has no hard-coded address of its own', async () => {
    expect(await client('etc/hostname')).toBe('app\n');
    const hosts = await client('etc/hosts');
    expect(hosts).toMatch(/^127\.0\.1\.1\tapp$/m);
    expect(hosts).toMatch(/^10\.0\.0\.1\t\S+$/m);
    const interfaces = (await client('etc/network/interfaces'))
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect(interfaces).toEqual(['auto lo', 'iface lo inet loopback']);
    const nameserver = entries('template-values')
      .find((l) => l.startsWith('NAMESERVER='))
      ?.slice('NAMESERVER='.length);
    expect(await client('etc/resolv.conf')).toMatch(
      new RegExp(`^nameserver ${nameserver ?? '?'}$`, 'm'),
    );
  });

  it('sends syslog to the log host only and keeps the journal in RAM', async () => {
    const rsyslog = await client('etc/rsyslog.conf');
    const syslogServer = entries('template-values')
      .find((l) => l.startsWith('SYSLOG_SERVER='))
      ?.slice('SYSLOG_SERVER='.length);
    const actions = rsyslog.match(/action\(type="(\w+)"[^)]*/g) ?? [];
    expect(actions).toHaveLength(1);
    expect(actions[0]).toContain(`type="omfwd" target="${syslogServer ?? '?'}"`);
    expect(rsyslog).not.toMatch(/^\s*\$IncludeConfig|^\s*include\(/m);
    expect(rsyslog).not.toMatch(/\/var\/log\//);
    expect(await client('etc/systemd/journald.conf.d/diskless.conf')).toMatch(
      /^Storage=volatile$/m,
    );
  });

  it("creates settings/var-dirs's directories in the /var skeleton", () => {
    const listing = execFileSync(
      'tar',
      [
        '--list',
        '--verbose',
        '--numeric-owner',
        '--file',
        path.join(root, 'etc/diskless/var-skel.tar'),
      ],
      { encoding: 'utf8' },
    );
    // root:adm 0750 as settings/var-dirs asks (adm is gid 4 in the fixture)
    expect(listing).toMatch(/^drwxr-x--- 0\/4 .* \.\/spool\/rsyslog\/$/m);
  });
});

describe('the example template as shipped keeps the master users and /usr keys from clients', () => {
  it("gives no client the master's /home, and fails the build on a key under the master's /usr", async () => {
    const master = await makeMaster();
    const state = await tempDir('state');
    const target = path.join(await tempDir('target'), 'clients');
    const inputs = options({
      source: master,
      target,
      template: TEMPLATE,
      'state-dir': state,
      'nfs-server': '10.0.0.1',
      'template-values': settings('template-values'),
    });
    const report = await buildReport(inputs, recordingReporter());
    const root = report.outputs.root;
    const fstab = await readFile(path.join(root, 'etc/fstab'), 'utf8');
    expect(fstabMounts(fstab).filter((m) => m.file === '/home')).toEqual([
      { spec: 'tmpfs', file: '/home', type: 'tmpfs' },
    ]);
    expect(await readdir(path.join(root, 'home'))).toEqual([]);
    // A key under the master's live /usr: the build fails naming it, and publishes nothing.
    const key = path.join(master, 'usr/local/etc/app/client.key');
    await mkdir(path.dirname(key), { recursive: true });
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
    await writeFile(path.join(master, 'etc/motd'), 'changed\n');
    const error = await buildReport(inputs, recordingReporter()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DisklessError);
    expect((error as Error).message).toContain('/usr/local/etc/app/client.key (pem-private-key)');
    expect(await readlink(path.join(target, 'current'))).toBe(`releases/${report.outputs.release}`);
    for (const dir of [master, path.dirname(target), state]) {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
