/**
 * A small master root planted with everything build-rootfs must leave out or change:
 * secrets and identity files, a server unit enabled, a SysV-only server script, a /var
 * with logs and caches, a /usr, a file capability, hard links, an ACL and an xattr.
 */
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readInputs } from '../../src/inputs/read.js';
import type { Reporter } from '../../src/report.js';
import { buildRootfs } from '../../src/rootfs/build.js';
import {
  buildRootfsInputs,
  type BuildRootfsOptions,
  type BuildRootfsReport,
} from '../../src/rootfs/options.js';
import { reportBuildRootfs } from '../../src/rootfs/result.js';
import { tempDir } from '../helpers/temp.js';

export { tempDir };

export const PRIVATE_KEY = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');
export const API_KEY = 'EH_KEY=Kx9-master-upload-key-7Qz';

/** Every planted secret or identity file, relative to the root: none may reach a client. */
export const SECRETS = [
  'etc/ssh/ssh_host_ed25519_key',
  'etc/ssh/ssh_host_ed25519_key.pub',
  'etc/udev/rules.d/70-persistent-net.rules',
  'etc/hostname',
  'etc/exports',
  'etc/shadow-',
  'etc/passwd-',
  'etc/gshadow-',
  'etc/NetworkManager/system-connections/office.nmconnection',
  'etc/krb5.keytab',
  'etc/ssl/private/master.key',
  'etc/.git/config',
  'etc/default/elastichosts',
  'opt/actions-runner/.credentials',
  'opt/actions-runner/.runner',
  'srv/app/.runner',
  'srv/app/.credentials',
  'srv/app/.git-credentials',
  'srv/app/.netrc',
  'root/.ssh/id_rsa',
  'home/alice/.netrc',
  'var/lib/systemd/random-seed',
  'var/lib/systemd/credential.secret',
  'var/lib/dbus/machine-id',
];

async function put(root: string, rel: string, data: string, mode = 0o644): Promise<void> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data, { mode });
  await chmod(file, mode);
}

export async function makeMaster(): Promise<string> {
  const root = await tempDir('master');
  for (const dir of [
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'boot',
    'home',
    'root',
    'mnt',
    'media',
    'usr/bin',
    'lost+found',
    'bin',
  ]) {
    await mkdir(path.join(root, dir), { recursive: true });
  }
  await chmod(path.join(root, 'tmp'), 0o1777);
  // Merged /usr, as bookworm has it.
  await symlink('usr/lib', path.join(root, 'lib'));
  await put(
    root,
    'etc/passwd',
    'root:x:0:0:root:/root:/bin/bash\nvarnish:x:112:118::/nonexistent:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n',
  );
  await put(
    root,
    'etc/group',
    'root:x:0:\nadm:x:4:\nvarnish:x:118:\nvcache:x:119:\nalice:x:1000:\n',
  );
  await put(root, 'etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  await put(root, 'etc/machine-id', '0123456789abcdef0123456789abcdef\n', 0o444);
  await put(root, 'etc/fstab', 'UUID=1234 / ext4 errors=remount-ro 0 1\n');
  await put(root, 'etc/motd', 'master motd\n');
  await put(root, 'etc/resolv.conf', 'nameserver 10.0.0.2\n');
  await symlink('../proc/self/mounts', path.join(root, 'etc/mtab'));
  await put(root, 'etc/ssh/sshd_config', 'PermitRootLogin no\n');
  await put(root, 'etc/ssh/ssh_host_ed25519_key', PRIVATE_KEY, 0o600);
  await put(root, 'etc/ssh/ssh_host_ed25519_key.pub', 'ssh-ed25519 AAAAmaster root@master\n');
  await put(root, 'etc/udev/rules.d/70-persistent-net.rules', 'SUBSYSTEM=="net", NAME="eth1"\n');
  await put(root, 'etc/hostname', 'master\n');
  await put(root, 'etc/exports', '/srv/diskless 10.0.0.0/24(ro,no_root_squash)\n');
  await put(root, 'etc/shadow-', 'root:$6$old:19000:0:99999:7:::\n', 0o600);
  await put(root, 'etc/passwd-', 'root:x:0:0:root:/root:/bin/bash\n', 0o600);
  await put(root, 'etc/gshadow-', 'root:*::\n', 0o600);
  await put(
    root,
    'etc/NetworkManager/system-connections/office.nmconnection',
    '[wifi-security]\npsk=hunter2\n',
    0o600,
  );
  await put(root, 'etc/krb5.keytab', '\x05\x02keytab', 0o600);
  await put(
    root,
    'etc/ssl/private/master.key',
    '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
    0o600,
  );
  await put(root, 'etc/.git/config', '[core]\n');
  await put(root, 'etc/default/elastichosts', `${API_KEY}\n`, 0o600);
  await put(root, 'opt/actions-runner/.credentials', '{"scheme":"OAuth"}\n', 0o600);
  await put(root, 'opt/actions-runner/.runner', '{"agentName":"master"}\n');
  await put(root, 'opt/actions-runner/run.sh', '#!/bin/sh\n', 0o755);
  await put(root, 'srv/app/.runner', '{}\n');
  await put(root, 'srv/app/.credentials', '{}\n', 0o600);
  await put(root, 'srv/app/.git-credentials', 'https://u:token@example.com\n', 0o600);
  await put(root, 'srv/app/.netrc', 'machine example.com password x\n', 0o600);
  await put(root, 'srv/app/index.html', '<p>app</p>\n');
  await put(root, 'root/.ssh/id_rsa', PRIVATE_KEY, 0o600);
  await put(root, 'home/alice/.netrc', 'machine example.com password x\n', 0o600);
  await put(root, 'boot/vmlinuz-6.1.0-1-amd64', 'kernel');
  await symlink('boot/vmlinuz-6.1.0-1-amd64', path.join(root, 'vmlinuz'));
  await symlink('boot/initrd.img-6.1.0-1-amd64', path.join(root, 'initrd.img'));
  await put(root, 'swapfile', 'swap', 0o600);
  await put(root, 'proc/cpuinfo', 'fake');
  await put(root, 'sys/kernel', 'fake');
  await put(root, 'dev/console', 'fake');
  await put(root, 'run/sshd.pid', '42\n');
  await put(root, 'tmp/junk', 'junk');
  await put(root, 'usr/bin/varnishd', '#!/bin/sh\n', 0o755);

  // systemd: a server unit enabled, a client unit to enable, a SysV-only server script.
  await put(
    root,
    'usr/lib/systemd/system/nfs-server.service',
    '[Unit]\nDescription=NFS server\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
  );
  await put(
    root,
    'usr/lib/systemd/system/chrony.service',
    '[Unit]\nDescription=chrony\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
  );
  await put(
    root,
    'usr/lib/systemd/system/local-fs.target',
    '[Unit]\nDescription=Local File Systems\n',
  );
  await put(
    root,
    'usr/lib/systemd/system/multi-user.target',
    '[Unit]\nDescription=Multi-User System\n',
  );
  await mkdir(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await symlink(
    '/lib/systemd/system/nfs-server.service',
    path.join(root, 'etc/systemd/system/multi-user.target.wants/nfs-server.service'),
  );
  await put(
    root,
    'etc/init.d/dnsmasq',
    '#!/bin/sh\n### BEGIN INIT INFO\n# Provides: dnsmasq\n### END INIT INFO\n',
    0o755,
  );
  await mkdir(path.join(root, 'etc/rc2.d'), { recursive: true });
  await symlink('../init.d/dnsmasq', path.join(root, 'etc/rc2.d/S01dnsmasq'));

  // /var with logs, caches, apt lists, spools and state files.
  await put(root, 'var/log/syslog', 'Jan 1 master kernel: log line\n', 0o640);
  await mkdir(path.join(root, 'var/log/varnish'), { recursive: true });
  await chown(path.join(root, 'var/log/varnish'), 112, 118);
  await chmod(path.join(root, 'var/log/varnish'), 0o750);
  await put(root, 'var/cache/apt/archives/varnish_7.1_amd64.deb', 'deb');
  await put(root, 'var/lib/apt/lists/deb.debian.org_Packages', 'Package: x\n');
  await put(root, 'var/spool/cron/crontabs/root', '* * * * * true\n', 0o600);
  await put(root, 'var/lib/systemd/random-seed', 'seed', 0o600);
  await put(root, 'var/lib/systemd/credential.secret', 'secret', 0o400);
  await put(root, 'var/lib/dbus/machine-id', '0123456789abcdef0123456789abcdef\n');
  await put(root, 'var/lib/dpkg/status', '');
  await put(root, 'var/lib/dpkg/lock', '', 0o640);
  await put(root, 'var/lib/dpkg/lock-frontend', '', 0o640);
  await mkdir(path.join(root, 'var/lib/dpkg/updates'), { recursive: true });
  await mkdir(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
  await symlink('/run', path.join(root, 'var/run'));
  await mkdir(path.join(root, 'var/tmp/leftover-dir'), { recursive: true });

  // A file capability, hard links, an ACL and a user xattr.
  await put(root, 'bin/ping', '\x7fELF ping', 0o755);
  execFileSync('setcap', ['cap_net_raw+ep', path.join(root, 'bin/ping')]);
  await put(root, 'etc/hardlink-a', 'shared inode\n');
  await link(path.join(root, 'etc/hardlink-a'), path.join(root, 'etc/hardlink-b'));
  await put(root, 'etc/acl-file', 'acl\n', 0o640);
  execFileSync('setfacl', ['-m', 'u:1000:r', path.join(root, 'etc/acl-file')]);
  execFileSync('setfattr', ['-n', 'user.diskless', '-v', 'kept', path.join(root, 'etc/motd')]);
  return root;
}

export async function makeTemplate(): Promise<string> {
  const dir = await tempDir('template');
  await put(
    dir,
    'etc/fstab.tmpl',
    [
      'tmpfs /var tmpfs mode=0755,size=128m 0 0',
      'tmpfs /tmp tmpfs mode=1777,size=64m 0 0',
      '{{NFS_SERVER}}:{{USR_ROOT}} /usr nfs ro,nolock,tcp,vers=3,port=2049 0 0',
      '',
    ].join('\n'),
  );
  await put(
    dir,
    'etc/initramfs-tools/initramfs.conf.tmpl',
    'MODULES=netboot\nBOOT=nfs\nNFSROOT={{ NFS_SERVER }}:{{NFS_ROOT}}\nCOMPRESS=gzip\n',
  );
  await put(dir, 'etc/motd', 'diskless client\n');
  await put(dir, 'usr/local/sbin/diskless-check', '#!/bin/sh\necho ok\n', 0o750);
  return dir;
}

/** Options as the action would read them from raw inputs. */
export function options(raw: Record<string, string>): BuildRootfsOptions {
  return readInputs(buildRootfsInputs, (name) => raw[name]);
}

/** One build's report: its outputs and summary, as the action publishes them. */
export async function buildReport(
  o: BuildRootfsOptions,
  reporter: Reporter,
): Promise<BuildRootfsReport> {
  return reportBuildRootfs(await buildRootfs(o, reporter, process.env));
}
