/**
 * The client's initramfs, made from the client root's own etc/initramfs-tools (never the
 * master's): the directory is copied to a work directory, told BOOT=nfs with MODULES and
 * COMPRESS the sysroot can honour, and given to `mkinitramfs -d`. When the sysroot is not
 * /, mkinitramfs runs inside it with chroot and /proc mounted, and /proc is unmounted again
 * whatever happens.
 */
import { cp, lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { childEnv, run } from '../process/run.js';
import type { Reporter } from '../report.js';
import { exists, lstatOrUndefined, sha256 } from '../files.js';
import { disableMasterOnlyFeatures } from './client-only.js';

export const CONFIG_DIR = 'etc/initramfs-tools';

/** One entry of a directory tree as the cache key sees it. */
export interface TreeEntry {
  rel: string;
  kind: 'f' | 'd' | 'l';
  mode: number;
  /** SHA-256 of a file's content, or a link's target. */
  content: string;
}

export interface Settings {
  BOOT: string;
  MODULES: string;
  COMPRESS: string;
}

export interface PreparedConfig {
  /** The copied and adjusted config directory (on the host). */
  dir: string;
  settings: Settings;
  /** Every entry of the adjusted copy: what reaches mkinitramfs. */
  entries: TreeEntry[];
}

/** Lists a tree in a fixed order with each entry's mode and content digest. */
export async function listTree(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const names = (await readdir(dir, { recursive: true })).sort();
  for (const rel of names) {
    const full = path.join(dir, rel);
    const st = await lstat(full);
    const mode = st.mode & 0o7777;
    if (st.isSymbolicLink()) out.push({ rel, kind: 'l', mode, content: await readlink(full) });
    else if (st.isDirectory()) out.push({ rel, kind: 'd', mode, content: '' });
    else if (st.isFile()) out.push({ rel, kind: 'f', mode, content: sha256(await readFile(full)) });
  }
  return out;
}

/** The programs each COMPRESS value needs in the sysroot (gzip is Essential in Debian). */
export const COMPRESSORS: Record<string, string> = {
  gzip: 'usr/bin/gzip',
  zstd: 'usr/bin/zstd',
  xz: 'usr/bin/xz',
  lzma: 'usr/bin/lzma',
  lz4: 'usr/bin/lz4',
  lzop: 'usr/bin/lzop',
  bzip2: 'usr/bin/bzip2',
};

const ASSIGNMENT = /^\s*(BOOT|MODULES|COMPRESS)=["']?([^"'\s#]*)["']?/;

export function assignments(text: string): [keyof Settings, string][] {
  const out: [keyof Settings, string][] = [];
  for (const line of text.split('\n')) {
    const m = ASSIGNMENT.exec(line);
    if (m) out.push([m[1] as keyof Settings, m[2] ?? '']);
  }
  return out;
}

/** The settings the copy must say, and why each differs from what the client's says. */
async function decide(
  given: Partial<Settings>,
  sysroot: string,
  reporter: Reporter,
): Promise<Settings> {
  let modules = given.MODULES ?? 'most';
  if (!['netboot', 'list'].includes(modules)) {
    reporter.info(
      `MODULES=${modules} in the client's config becomes MODULES=netboot: a diskless client needs its network and NFS drivers${modules === 'dep' ? ', and dep would pick the drivers of the machine that builds' : ''} (set MODULES=list or netboot to choose)`,
    );
    modules = 'netboot';
  }
  let compress = given.COMPRESS ?? '';
  const tool = COMPRESSORS[compress];
  if (!tool || !(await exists(path.join(sysroot, tool)))) {
    const fallback = (await exists(path.join(sysroot, COMPRESSORS.zstd ?? ''))) ? 'zstd' : 'gzip';
    if (compress !== '') {
      reporter.warning(
        `COMPRESS=${compress} in the client's initramfs config is not available in ${sysroot} (no ${tool ?? 'such compressor'}); using ${fallback}`,
      );
    }
    compress = fallback;
  }
  return { BOOT: 'nfs', MODULES: modules, COMPRESS: compress };
}

/**
 * Copies the client root's etc/initramfs-tools into `dest` and makes it say BOOT=nfs and
 * MODULES and COMPRESS that work in the sysroot. initramfs.conf is edited in place; when a
 * conf.d file sets one of these too, conf.d/zz-diskless (read last) restates them.
 */
export async function prepareConfig(
  root: string,
  sysroot: string,
  dest: string,
  reporter: Reporter,
  chosen: Partial<Pick<Settings, 'MODULES' | 'COMPRESS'>> = {},
): Promise<PreparedConfig> {
  const src = path.join(root, CONFIG_DIR);
  const st = await lstatOrUndefined(src);
  if (!st?.isDirectory()) {
    throw new DisklessError(
      `The client root ${root} has no ${CONFIG_DIR} directory; build-rootfs copies it from the master (install initramfs-tools there) or the template provides it`,
    );
  }
  await cp(src, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const confFile = path.join(dest, 'initramfs.conf');
  const conf = (await exists(confFile)) ? await readFile(confFile, 'utf8') : '';
  const given: Partial<Settings> = Object.fromEntries(assignments(conf));
  const confD = path.join(dest, 'conf.d');
  const overridden = new Set<string>();
  const confDNames = (await exists(confD)) ? (await readdir(confD)).sort() : [];
  for (const name of confDNames) {
    const file = path.join(confD, name);
    if (!(await lstat(file)).isFile()) continue;
    for (const [key, value] of assignments(await readFile(file, 'utf8'))) {
      given[key] = value;
      overridden.add(key);
    }
  }
  const settings = await decide({ ...given, ...chosen }, sysroot, reporter);
  let text = conf;
  for (const key of ['BOOT', 'MODULES', 'COMPRESS'] as const) {
    const line = `${key}=${settings[key]}`;
    const pattern = new RegExp(`^\\s*${key}=.*$`, 'gm');
    text = pattern.test(text)
      ? text.replace(pattern, line)
      : `${text.replace(/\n?$/, '\n')}${line}\n`;
  }
  await writeFile(confFile, text, { mode: 0o644 });
  await disableMasterOnlyFeatures(dest);
  if (overridden.size > 0) {
    await writeFile(
      path.join(confD, 'zz-diskless'),
      `# Written by diskless build-iso: a diskless client boots from NFS.\nBOOT=${settings.BOOT}\nMODULES=${settings.MODULES}\nCOMPRESS=${settings.COMPRESS}\n`,
      { mode: 0o644 },
    );
  }
  return { dir: dest, settings, entries: await listTree(dest) };
}

/** Installed package versions of the sysroot, from its dpkg status file. */
export async function packageVersions(sysroot: string): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  let status: string;
  try {
    status = await readFile(path.join(sysroot, 'var/lib/dpkg/status'), 'utf8');
  } catch {
    return versions;
  }
  for (const stanza of status.split(/\n\n+/)) {
    const name = /^Package: (.+)$/m.exec(stanza)?.[1];
    const version = /^Version: (.+)$/m.exec(stanza)?.[1];
    const state = /^Status: (.+)$/m.exec(stanza)?.[1];
    if (name && version && state?.endsWith(' installed')) versions.set(name, version);
  }
  return versions;
}

/** mkinitramfs in the sysroot, or a clear error naming the package. */
export async function findMkinitramfs(sysroot: string): Promise<void> {
  if (await exists(path.join(sysroot, 'usr/sbin/mkinitramfs'))) return;
  if (await exists(path.join(sysroot, 'sbin/mkinitramfs'))) return;
  throw new DisklessError(
    `initramfs-tools is not installed in ${sysroot} (no mkinitramfs); install the Debian package initramfs-tools${sysroot === '/' ? '' : ` in ${sysroot}`}`,
  );
}

/** A host path inside the sysroot, as the sysroot sees it. */
function inside(sysroot: string, file: string): string {
  return `/${path.relative(sysroot, file)}`;
}

/**
 * Runs mkinitramfs with the prepared config. `config` and `output` must lie inside the
 * sysroot when it is not /. SOURCE_DATE_EPOCH makes the image reproducible.
 */
export async function mkinitramfs(o: {
  sysroot: string;
  config: string;
  output: string;
  version: string;
  epoch: number;
  reporter: Reporter;
}): Promise<void> {
  const onLine = (line: string) => {
    if (line.trim() !== '') o.reporter.debug(`mkinitramfs: ${line}`);
  };
  if (o.sysroot === '/') {
    await run('mkinitramfs', ['-d', o.config, '-o', o.output, o.version], {
      env: childEnv({ SOURCE_DATE_EPOCH: String(o.epoch) }),
      debianPackage: 'initramfs-tools',
      onLine,
    });
    return;
  }
  const proc = path.join(o.sysroot, 'proc');
  const env = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    SOURCE_DATE_EPOCH: String(o.epoch),
  };
  await run('mount', ['-t', 'proc', 'proc', proc], { debianPackage: 'mount' });
  try {
    await run(
      'chroot',
      [
        o.sysroot,
        'mkinitramfs',
        '-d',
        inside(o.sysroot, o.config),
        '-o',
        inside(o.sysroot, o.output),
        o.version,
      ],
      { env, debianPackage: 'coreutils', onLine },
    );
  } finally {
    // A failure to unmount must not hide the build's own error, and must not leave it.
    try {
      await run('umount', [proc]);
    } catch {
      await run('umount', ['-l', proc]).catch(() => undefined);
    }
  }
}
