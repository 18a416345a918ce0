/**
 * The made (or cached) initramfs is unpacked with initramfs-tools' own unmkinitramfs and
 * checked for everything a BOOT=nfs boot needs before the ISO is made: update-initramfs
 * has been seen to succeed with a required file missing, and then every server fails to
 * boot. Checked: the nfs boot script and klibc's mount and network helpers, the config
 * saying BOOT=nfs, and each required kernel module (a file in the image, or built into
 * the kernel as the image's modules.builtin says). A failure names every missing piece.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { exists, statOrUndefined } from '../files.js';
import { run } from '../process/run.js';
import { assignments, type PreparedConfig } from './initramfs.js';
import { requiredModules } from './modules.js';

/** Files of initramfs-tools' NFS boot, by what they do (basename: anywhere in the image). */
const BOOT_FILES = [
  { what: 'the nfs boot script', rel: 'scripts/nfs' },
  { what: "the boot scripts' functions (configure_networking)", rel: 'scripts/functions' },
  { what: 'the NFS mount helper (klibc-utils)', basename: 'nfsmount' },
  { what: 'the network helper (klibc-utils)', basename: 'ipconfig' },
] as const;

const MODULE_FILE = /\.ko(?:\.(?:xz|zst|gz))?$/;

/** modprobe treats - and _ in module names alike. */
function moduleKey(name: string): string {
  return name.replace(MODULE_FILE, '').replace(/-/g, '_');
}

export interface InitramfsContents {
  /** Every path in the (main) archive, relative, and their base names. */
  paths: Set<string>;
  basenames: Set<string>;
  /** Module names (normalised) present as files. */
  modules: Set<string>;
  /** Module names built into the kernel, as the image's modules.builtin lists them. */
  builtin: Set<string>;
  /** BOOT as the image's init reads it: conf/initramfs.conf, then conf/conf.d/* in order. */
  boot: string | undefined;
}

/** Unpacks `image` under `scratch` and reads what the check needs; removes the copy. */
export async function readInitramfs(image: string, scratch: string): Promise<InitramfsContents> {
  const dir = await mkdtemp(path.join(scratch, 'initramfs-'));
  try {
    await run('unmkinitramfs', [image, dir], { debianPackage: 'initramfs-tools-core' });
    // With more than one archive in the image (microcode, or trixie's uncompressed archive
    // of already compressed modules) each is unpacked into its own directory: early,
    // early2, ..., main. The kernel unpacks them all into one root; so does this union.
    const segments = (await exists(path.join(dir, 'main', 'init')))
      ? (await readdir(dir)).sort().map((d) => path.join(dir, d))
      : [dir];
    const where = new Map<string, string>();
    for (const segment of segments) {
      for (const rel of await readdir(segment, { recursive: true })) {
        where.set(rel, path.join(segment, rel));
      }
    }
    const files = [...where.keys()].sort();
    const modules = new Set<string>();
    const builtin = new Set<string>();
    for (const rel of files) {
      const name = path.basename(rel);
      if (MODULE_FILE.test(name)) modules.add(moduleKey(name));
      if (
        name === 'modules.builtin' &&
        /(?:^|\/)lib\/modules\/[^/]+\/modules\.builtin$/.test(rel)
      ) {
        for (const line of (await readFile(where.get(rel) ?? '', 'utf8')).split('\n')) {
          if (line.trim() !== '') builtin.add(moduleKey(path.basename(line.trim())));
        }
      }
    }
    let boot: string | undefined;
    const confs = [
      'conf/initramfs.conf',
      ...files.filter((f) => f.startsWith('conf/conf.d/')).sort(),
    ];
    for (const rel of confs) {
      const file = where.get(rel) ?? '';
      if (!(await statOrUndefined(file))?.isFile()) continue;
      for (const [key, value] of assignments(await readFile(file, 'utf8'))) {
        if (key === 'BOOT') boot = value;
      }
    }
    return {
      paths: new Set(files),
      basenames: new Set(files.map((f) => path.basename(f))),
      modules,
      builtin,
      boot,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Checks the initramfs at `image` for an NFS boot with `modules`; returns what it found,
 * or throws one DisklessError naming every missing piece.
 */
export async function checkInitramfs(
  image: string,
  scratch: string,
  modules: readonly string[],
): Promise<InitramfsContents> {
  const found = await readInitramfs(image, scratch);
  const problems: string[] = [];
  for (const f of BOOT_FILES) {
    const ok = 'rel' in f ? found.paths.has(f.rel) : found.basenames.has(f.basename);
    if (!ok) problems.push(`${f.what} ${'rel' in f ? f.rel : f.basename}`);
  }
  if (found.boot !== 'nfs') {
    problems.push(
      `the config with BOOT=nfs (conf/initramfs.conf and conf.d say ${found.boot === undefined ? 'no BOOT' : `BOOT=${found.boot}`})`,
    );
  }
  const missing = [...new Set(modules)].filter(
    (m) => !found.modules.has(moduleKey(m)) && !found.builtin.has(moduleKey(m)),
  );
  if (missing.length > 0) {
    problems.push(`kernel module${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`);
  }
  if (problems.length > 0) {
    throw new DisklessError(
      `The initramfs lacks what an NFS boot needs: ${problems.join('; ')} (checked ${image} with unmkinitramfs)`,
    );
  }
  return found;
}

/** build-iso's check of its initramfs against the prepared config; returns the log line. */
export async function checkClientInitramfs(
  image: string,
  scratch: string,
  config: Pick<PreparedConfig, 'dir' | 'settings'>,
): Promise<string> {
  const needed = await requiredModules(config.dir, config.settings.MODULES);
  const found = await checkInitramfs(image, scratch, needed);
  return `Initramfs checked (unmkinitramfs): scripts/nfs, nfsmount, ipconfig, BOOT=nfs and the modules ${needed.join(', ')}; ${found.modules.size} modules in it`;
}
