// build-rootfs against fixture master roots with the real rsync, systemctl, ssh-keygen,
// tar, setcap/getcap and getfacl (run as root, never on the machine's own /).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { exists, sha256 } from '../../src/files.js';
import { fcntlConstants, holdLocks } from '../../src/rootfs/lock.js';
import {
  API_KEY,
  PRIVATE_KEY,
  SECRETS,
  buildReport,
  makeMaster,
  makeTemplate,
  options,
  tempDir,
} from './fixture.js';
import type { BuildRootfsReport } from '../../src/rootfs/options.js';
import { recordingReporter } from '../../src/report.js';

/** Every entry under `dir` with type, mode, owner, inode, size, link target and content hash. */
async function manifest(dir: string, o: { dirTimes?: boolean } = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const file = path.join(dir, child);
      const st = await lstat(file);
      let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ino=${st.ino}`;
      if (!st.isDirectory() || o.dirTimes !== false) what += ` mtime=${st.mtimeMs}`;
      if (st.isSymbolicLink()) what += ` -> ${await readlink(file)}`;
      else if (st.isFile()) what += ` ${sha256(await readFile(file))}`;
      out.set(child, what);
      if (st.isDirectory()) await walk(child);
    }
  }
  await walk('');
  return out;
}

let master: string;
let template: string;
let state: string;

beforeAll(async () => {
  master = await makeMaster();
  await chmod(master, 0o755);
  template = await makeTemplate();
  state = await tempDir('state');
});

function inputs(target: string, extra: Record<string, string> = {}) {
  return options({
    source: master,
    target,
    template,
    'state-dir': state,
    'nfs-server': '10.0.0.1',
    'var-dirs': 'lib/varnish/etc varnish\nspool/varnish-x varnish:vcache 0700',
    ...extra,
  });
}

describe('a first build of a fixture master', () => {
  let target: string;
  let root: string;
  let outputs: BuildRootfsReport['outputs'];

  beforeAll(async () => {
    target = path.join(await tempDir('target'), 'clients');
    const report = await buildReport(inputs(target), recordingReporter());
    outputs = report.outputs;
    root = outputs.root;
  });

  it('publishes a release under releases/ and points current at it', async () => {
    expect(outputs.changed).toBe(true);
    expect(root).toBe(path.join(target, 'releases', outputs.release));
    expect(await readlink(path.join(target, 'current'))).toBe(`releases/${outputs.release}`);
    expect(outputs.files).toBeGreaterThan(10);
    expect(outputs.bytes).toBeGreaterThan(0);
    expect(typeof outputs.duration).toBe('number');
  });

  it('carries none of the master secrets or identity files', async () => {
    for (const rel of SECRETS) {
      if (rel === 'etc/ssh/ssh_host_ed25519_key' || rel === 'etc/ssh/ssh_host_ed25519_key.pub')
        continue;
      expect(await exists(path.join(root, rel)), rel).toBe(false);
    }
    expect(await readFile(path.join(root, 'etc/machine-id'), 'utf8')).toBe('');
    const grep = spawnSync(
      'grep',
      ['-r', '-l', '-e', 'Kx9-master', '-e', 'hunter2', '-e', 'OAuth', root],
      {
        encoding: 'utf8',
      },
    );
    expect([grep.status, grep.stdout]).toEqual([1, '']);
  });

  it("gives clients their own ssh host keys, not the master's", async () => {
    const key = await readFile(path.join(root, 'etc/ssh/ssh_host_ed25519_key'), 'utf8');
    expect(key).not.toBe(PRIVATE_KEY);
    expect(key).toBe(
      await readFile(path.join(state, 'client-ssh-host-keys/ssh_host_ed25519_key'), 'utf8'),
    );
    expect((await lstat(path.join(root, 'etc/ssh/ssh_host_ed25519_key'))).mode & 0o777).toBe(0o600);
  });

  it('lays the template over the copy and renders its .tmpl files', async () => {
    expect(await readFile(path.join(root, 'etc/motd'), 'utf8')).toBe('diskless client\n');
    expect(await readFile(path.join(root, 'etc/fstab'), 'utf8')).toContain(
      `10.0.0.1:${master}/usr /usr nfs ro,nolock,tcp,vers=3,port=2049 0 0`,
    );
    expect(await readFile(path.join(root, 'etc/initramfs-tools/initramfs.conf'), 'utf8')).toContain(
      `NFSROOT=10.0.0.1:${target}/current\n`,
    );
    expect(await exists(path.join(root, 'etc/fstab.tmpl'))).toBe(false);
    const check = await lstat(path.join(root, 'usr/local/sbin/diskless-check'));
    expect([check.mode & 0o7777, check.uid, check.gid]).toEqual([0o750, 0, 0]);
  });

  it('masks the enabled server unit and the SysV-only server script', async () => {
    expect(await readlink(path.join(root, 'etc/systemd/system/nfs-server.service'))).toBe(
      '/dev/null',
    );
    expect(await readlink(path.join(root, 'etc/systemd/system/dnsmasq.service'))).toBe('/dev/null');
    expect(await exists(path.join(root, 'etc/rc2.d/S01dnsmasq'))).toBe(false);
    const enabled = spawnSync('systemctl', [`--root=${root}`, 'is-enabled', 'nfs-server.service'], {
      encoding: 'utf8',
    });
    expect(enabled.stdout.trim()).toBe('masked');
  });

  it('leaves /var empty with a skeleton archive and the unit that unpacks it at boot', async () => {
    expect(await readdir(path.join(root, 'var'))).toEqual([]);
    const listing = execFileSync('tar', ['-tvf', path.join(root, 'etc/diskless/var-skel.tar')], {
      encoding: 'utf8',
    });
    expect(listing).toMatch(/^drwxr-x--- varnish\/varnish .* \.\/log\/varnish\/$/m);
    expect(listing).toMatch(/^drwxr-xr-x varnish\/varnish .* \.\/lib\/varnish\/etc\/$/m);
    expect(listing).toMatch(/^drwx------ varnish\/vcache .* \.\/spool\/varnish-x\/$/m);
    expect(listing).toMatch(/^lrwxrwxrwx root\/root .* \.\/run -> \/run$/m);
    expect(listing).not.toMatch(/syslog|\.deb|Packages|crontabs\/root|random-seed|leftover-dir/);
    const unit = await readFile(
      path.join(root, 'etc/systemd/system/diskless-populate-var.service'),
      'utf8',
    );
    expect(unit).toContain(
      'ExecStart=/bin/tar --extract --file=/etc/diskless/var-skel.tar --directory=/var',
    );
    expect(
      await readlink(
        path.join(root, 'etc/systemd/system/local-fs.target.wants/diskless-populate-var.service'),
      ),
    ).toBe('/etc/systemd/system/diskless-populate-var.service');
  });

  it('unpacks the skeleton with GNU tar into an empty directory as the client would', async () => {
    const fakeVar = await tempDir('var');
    execFileSync('tar', [
      '--extract',
      `--file=${path.join(root, 'etc/diskless/var-skel.tar')}`,
      `--directory=${fakeVar}`,
      '--same-owner',
      '--preserve-permissions',
    ]);
    const st = await lstat(path.join(fakeVar, 'log/varnish'));
    expect([st.isDirectory(), st.mode & 0o7777, st.uid, st.gid]).toEqual([true, 0o750, 112, 118]);
    expect(await readlink(path.join(fakeVar, 'run'))).toBe('/run');
  });

  it('honours the exclusions: virtual filesystems, /tmp, /home, /root, /boot, /usr, kernel links, swap', async () => {
    for (const dir of ['proc', 'sys', 'dev', 'run', 'tmp', 'home', 'root', 'boot']) {
      expect(await readdir(path.join(root, dir)), dir).toEqual([]);
    }
    expect(await readdir(path.join(root, 'usr'))).toEqual(['local']); // only the template's
    for (const rel of ['vmlinuz', 'initrd.img', 'swapfile', 'lost+found', 'opt/actions-runner']) {
      expect(await exists(path.join(root, rel)), rel).toBe(false);
    }
    expect(await exists(path.join(root, 'srv/app/index.html'))).toBe(true);
    expect(await readlink(path.join(root, 'etc/mtab'))).toBe('../proc/self/mounts');
  });

  it('preserves file capabilities, hard links, ACLs and extended attributes', async () => {
    expect(execFileSync('getcap', [path.join(root, 'bin/ping')], { encoding: 'utf8' })).toContain(
      'cap_net_raw=ep',
    );
    const [a, b] = await Promise.all([
      lstat(path.join(root, 'etc/hardlink-a')),
      lstat(path.join(root, 'etc/hardlink-b')),
    ]);
    expect(a.ino).toBe(b.ino);
    expect(
      execFileSync('getfacl', ['-n', path.join(root, 'etc/acl-file')], { encoding: 'utf8' }),
    ).toContain('user:1000:r--');
  });
});

describe('rebuilds of a versioned target', () => {
  it('publishes nothing when nothing changed, a new release when one file did, and prunes', async () => {
    const master2 = await makeMaster();
    await chmod(master2, 0o755);
    const target = path.join(await tempDir('target'), 'clients');
    // keep-days 0: only keep and the in-use signals hold a release (retention.test.ts).
    const raw = { source: master2, keep: '2', 'keep-days': '0' };
    const first = await buildReport(inputs(target, raw), recordingReporter());

    const again = await buildReport(inputs(target, raw), recordingReporter());
    expect(again.outputs.changed).toBe(false);
    expect(again.outputs.release).toBe(first.outputs.release);
    expect(
      (await readdir(path.join(target, 'releases'))).filter((n) => !n.endsWith('.json')),
    ).toEqual([first.outputs.release]);

    const before = await manifest(first.outputs.root);
    await writeFile(path.join(master2, 'etc/resolv.conf'), 'nameserver 10.0.0.3\n');
    const changed = await buildReport(inputs(target, raw), recordingReporter());
    expect(changed.outputs.changed).toBe(true);
    expect(changed.outputs.release).not.toBe(first.outputs.release);
    const oldRoot = first.outputs.root;
    const newRoot = changed.outputs.root;
    expect(await readlink(path.join(target, 'current'))).toBe(
      `releases/${changed.outputs.release}`,
    );
    // The previous release is byte for byte (and inode for inode) what it was.
    expect(await manifest(oldRoot)).toEqual(before);
    expect(await readFile(path.join(newRoot, 'etc/resolv.conf'), 'utf8')).toBe(
      'nameserver 10.0.0.3\n',
    );
    expect(await readFile(path.join(oldRoot, 'etc/resolv.conf'), 'utf8')).toBe(
      'nameserver 10.0.0.2\n',
    );
    // Unchanged files, copied or generated, are hard links between the releases.
    for (const rel of [
      'etc/passwd',
      'bin/ping',
      'etc/motd',
      'etc/fstab',
      'etc/machine-id',
      'etc/diskless/var-skel.tar',
      'etc/ssh/ssh_host_rsa_key',
    ]) {
      const [o, n] = await Promise.all([
        lstat(path.join(oldRoot, rel)),
        lstat(path.join(newRoot, rel)),
      ]);
      expect(n.ino, rel).toBe(o.ino);
    }
    const [o, n] = await Promise.all([
      lstat(path.join(oldRoot, 'etc/resolv.conf')),
      lstat(path.join(newRoot, 'etc/resolv.conf')),
    ]);
    expect(n.ino).not.toBe(o.ino);

    // Two more changed builds with keep=2 and keep-days 0: the two newest stay.
    await writeFile(path.join(master2, 'etc/resolv.conf'), 'nameserver 10.0.0.4\n');
    const third = await buildReport(inputs(target, raw), recordingReporter());
    await writeFile(path.join(master2, 'etc/resolv.conf'), 'nameserver 10.0.0.5\n');
    const fourth = await buildReport(inputs(target, raw), recordingReporter());
    const left = (await readdir(path.join(target, 'releases')))
      .filter((n) => !n.endsWith('.json'))
      .sort();
    expect(left).toEqual([third.outputs.release, fourth.outputs.release].sort());
    expect(await exists(first.outputs.root)).toBe(false);
    expect(await exists(`${first.outputs.root}.json`)).toBe(false);
  });

  it('rebuilds when only the template changed, and keeps client keys across builds', async () => {
    const tpl = await makeTemplate();
    const target = path.join(await tempDir('target'), 'clients');
    const first = await buildReport(inputs(target, { template: tpl }), recordingReporter());
    await writeFile(path.join(tpl, 'etc/motd'), 'new motd\n');
    const second = await buildReport(inputs(target, { template: tpl }), recordingReporter());
    expect(second.outputs.changed).toBe(true);
    const newRoot = second.outputs.root;
    expect(await readFile(path.join(newRoot, 'etc/motd'), 'utf8')).toBe('new motd\n');
    expect(await readFile(path.join(first.outputs.root, 'etc/motd'), 'utf8')).toBe(
      'diskless client\n',
    );
    expect(await readFile(path.join(newRoot, 'etc/ssh/ssh_host_ed25519_key'))).toEqual(
      await readFile(path.join(first.outputs.root, 'etc/ssh/ssh_host_ed25519_key')),
    );
  });
});

describe('refusals leave the target exactly as it was', () => {
  async function refused(
    raw: Record<string, string>,
    target: string,
    expected: RegExp,
  ): Promise<void> {
    // A target that does not exist yet must not appear: watch its parent.
    const watch = (await exists(target)) ? target : path.dirname(target);
    const before = await manifest(watch);
    const sourceBefore = await manifest(master);
    const error = await buildReport(
      options({ source: master, 'state-dir': state, 'nfs-server': '10.0.0.1', ...raw }),
      recordingReporter(),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DisklessError);
    expect((error as Error).message).toMatch(expected);
    expect((error as Error).message).not.toContain('\n');
    expect(await manifest(watch)).toEqual(before);
    expect(await manifest(master)).toEqual(sourceBefore);
  }

  it('refuses a target that is the source or contains it', async () => {
    await refused(
      { target: master },
      master,
      /Input "target": .*expected a directory other than the source/,
    );
    const outer = await tempDir('outer');
    const inner = path.join(outer, 'srv', 'master');
    await mkdir(inner, { recursive: true });
    await writeFile(path.join(inner, 'keep-me'), 'data');
    await refused(
      { target: outer, source: inner },
      outer,
      /Input "target": .*does not contain the source/,
    );
  });

  it('refuses a non-empty target it did not create', async () => {
    const target = path.join(await tempDir('foreign'), 'data');
    await mkdir(target);
    await writeFile(path.join(target, 'precious.db'), 'data');
    await refused(
      { target },
      target,
      /Input "target": .*holds 1 entries but no \.diskless-target marker/,
    );
  });

  it('refuses a source that is not a directory and a template that does not exist', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    await refused(
      { target, source: path.join(master, 'etc/motd') },
      target,
      /Input "source": .*expected an existing directory \(it is not a directory\)/,
    );
    await refused(
      { target, source: path.join(master, 'nowhere') },
      target,
      /Input "source": .*\(it does not exist\)/,
    );
    await refused(
      { target, template: path.join(master, 'no-template') },
      target,
      /Input "template": .*\(it does not exist\)/,
    );
  });

  it('refuses a layout other than the one the target was made with', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    await buildReport(inputs(target), recordingReporter());
    await refused(
      { target, template, layout: 'in-place' },
      target,
      /Input "layout": got "in-place"; expected "versioned"/,
    );
  });

  it('refuses a template with an unknown placeholder or a missing value', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const tpl = await makeTemplate();
    await writeFile(path.join(tpl, 'etc/issue.tmpl'), 'Welcome to {{ETH_IF}}\n');
    await refused(
      { target, template: tpl },
      target,
      /template etc\/issue\.tmpl line 1: unknown placeholder \{\{ETH_IF\}\}; expected one of/,
    );
    const tpl2 = await makeTemplate();
    await refused(
      { target, template: tpl2, 'nfs-server': '' },
      target,
      /template etc\/fstab\.tmpl line 3: placeholder \{\{NFS_SERVER\}\} has no value; expected input "nfs-server" to be set/,
    );
  });

  it('refuses relative and root targets in library calls too', async () => {
    const base = { ...inputs('/x'), source: master };
    await expect(
      buildReport({ ...base, target: 'relative/dir' }, recordingReporter()),
    ).rejects.toThrow(/Input "target": got "relative\/dir"; expected an absolute path/);
    await expect(buildReport({ ...base, target: '/' }, recordingReporter())).rejects.toThrow(
      /Input "target": got "\/"; expected a directory other than \//,
    );
  });
});

describe('the secret scan', () => {
  it('fails a build whose template adds a private key, listing the path only', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const good = await buildReport(inputs(target), recordingReporter());
    const tpl = await makeTemplate();
    await mkdir(path.join(tpl, 'etc/app'), { recursive: true });
    await writeFile(
      path.join(tpl, 'etc/app/tls.pem'),
      `-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n${PRIVATE_KEY}`,
    );
    await writeFile(path.join(tpl, 'etc/default/elastichosts'), `${API_KEY}\n`).catch(async () => {
      await mkdir(path.join(tpl, 'etc/default'), { recursive: true });
      await writeFile(path.join(tpl, 'etc/default/elastichosts'), `${API_KEY}\n`);
    });
    // Directory times aside (a staging directory came and went), nothing changed.
    const before = await manifest(target, { dirTimes: false });
    const error = await buildReport(inputs(target, { template: tpl }), recordingReporter()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DisklessError);
    const message = (error as Error).message;
    expect(message).toContain('/etc/app/tls.pem');
    expect(message).toContain('/etc/default/elastichosts');
    expect(message).not.toContain('OPENSSH');
    expect(message).not.toContain('Kx9');
    // Nothing published, no half-built release left behind.
    expect(await manifest(target, { dirTimes: false })).toEqual(before);
    expect(await readlink(path.join(target, 'current'))).toBe(`releases/${good.outputs.release}`);

    const allowed = await buildReport(
      inputs(target, {
        template: tpl,
        'secret-allow': '/etc/app/tls.pem\netc/default/elastichosts',
      }),
      recordingReporter(),
    );
    expect(allowed.outputs.changed).toBe(true);
    expect(await readFile(path.join(allowed.outputs.root, 'etc/app/tls.pem'), 'utf8')).toContain(
      'PRIVATE KEY',
    );
  });
});

describe('locks', () => {
  it("gives the lock helper this machine's own fcntl constants without loading Fcntl", () => {
    const names = ['F_SETLK', 'F_SETLKW', 'F_WRLCK', 'SEEK_SET', 'O_RDWR'];
    const print = `print join(' ', ${names.join(', ')})`;
    const perl = (prelude: string): string =>
      execFileSync('perl', ['-e', `${prelude}\n${print}`], { encoding: 'utf8' });
    const given = fcntlConstants(process.arch);
    expect(given).not.toContain('use Fcntl');
    expect(perl(given)).toBe(perl('use Fcntl qw(:DEFAULT :flock :seek);'));
    expect(fcntlConstants('mips64el')).toContain('use Fcntl');
  });

  it('a build waits while another holds the target, then succeeds', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    await buildReport(inputs(target), recordingReporter());
    const other = await holdLocks([path.join(target, '.diskless-lock')], () => undefined);
    let publishedWhileWaiting: string[] | undefined;
    const reporter = recordingReporter((line) => {
      if (line.startsWith('Another build of')) {
        void readdir(path.join(target, 'releases')).then(async (names) => {
          publishedWhileWaiting = names;
          await other.release();
        });
      }
    });
    await writeFile(path.join(master, 'etc/lock-test'), 'x');
    const names = await readdir(path.join(target, 'releases'));
    const report = await buildReport(inputs(target), reporter);
    expect(reporter.lines).toContain(
      `Another build of ${target} is running; waiting for it to finish`,
    );
    expect(publishedWhileWaiting).toEqual(names);
    expect(report.outputs.changed).toBe(true);
  });

  it("holds the source's dpkg lock the way apt does, so dpkg cannot run meanwhile", async () => {
    const admin = path.join(master, 'var/lib/dpkg');
    const dpkg = (): string => {
      try {
        execFileSync('dpkg', [`--admindir=${admin}`, '--log=/dev/null', '--configure', '-a'], {
          encoding: 'utf8',
          stdio: 'pipe',
        });
        return 'ran';
      } catch (error) {
        return String((error as { stderr?: string }).stderr);
      }
    };
    const held = await holdLocks(
      [path.join(admin, 'lock-frontend'), path.join(admin, 'lock')],
      () => undefined,
    );
    expect(dpkg()).toMatch(/lock.*(held|locked) by another process/);
    await held.release();
    expect(dpkg()).toBe('ran');
  });

  it('waits to copy while apt holds the dpkg lock of the source, and copies once it is free', async () => {
    const admin = path.join(master, 'var/lib/dpkg');
    const target = path.join(await tempDir('target'), 'clients');
    // "apt" holds the dpkg locks the way apt does (fcntl write locks).
    const apt = await holdLocks(
      [path.join(admin, 'lock-frontend'), path.join(admin, 'lock')],
      () => undefined,
    );
    let releasesWhileWaiting: string[] | undefined;
    const reporter = recordingReporter((line) => {
      if (line.startsWith('Waiting for the dpkg lock')) {
        void readdir(target)
          .then((names) => {
            releasesWhileWaiting = names.filter((n) => n === 'current');
          })
          .finally(() => void apt.release());
      }
    });
    const report = await buildReport(inputs(target), reporter);
    expect(
      reporter.lines.some((l) => l.startsWith('Waiting for the dpkg lock of the source')),
    ).toBe(true);
    expect(releasesWhileWaiting).toEqual([]); // nothing published while apt held the lock
    expect(report.outputs.changed).toBe(true);
  });
});

describe('in-place layout', () => {
  it('syncs straight into the target, warns, and changes nothing on a rebuild', async () => {
    const target = path.join(await tempDir('target'), 'inplace');
    const r1 = recordingReporter();
    const first = await buildReport(inputs(target, { layout: 'in-place' }), r1);
    expect(first.outputs.root).toBe(target);
    expect(r1.warnings.join('\n')).toContain('running clients');
    expect(await readFile(path.join(target, 'etc/motd'), 'utf8')).toBe('diskless client\n');
    expect(await exists(path.join(target, '.diskless-target'))).toBe(true);
    const again = await buildReport(inputs(target, { layout: 'in-place' }), recordingReporter());
    expect(again.outputs.changed).toBe(false);
    await writeFile(path.join(master, 'etc/inplace-test'), 'x');
    const third = await buildReport(inputs(target, { layout: 'in-place' }), recordingReporter());
    expect(third.outputs.changed).toBe(true);
    expect(await exists(path.join(target, 'etc/inplace-test'))).toBe(true);
    expect(await exists(path.join(target, '.diskless-target'))).toBe(true);
  });
});
