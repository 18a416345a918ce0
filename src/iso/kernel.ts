/**
 * The kernel that goes on the ISO: the `kernel` input (a path or a version), else the
 * sysroot's /vmlinuz link, else its newest /boot/vmlinuz-*. Its version is read from the
 * image's own header (bzImage's kernel_version string) and must match the file name and
 * a modules directory in the sysroot: an initramfs with another kernel's modules, or
 * none, would not boot.
 */
import { open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError, inputError } from '../errors.js';
import { sha256, sha256File, statOrUndefined } from '../files.js';

export interface Kernel {
  /** The image on the host (inside the sysroot). */
  image: string;
  version: string;
  /** SHA-256 of the image. */
  digest: string;
  /** The image's modification time, seconds since the epoch (the ISO's date by default). */
  mtime: number;
  /** The modules directory on the host. */
  modulesDir: string;
  /** SHA-256 of the modules directory's contents list (path, type, mode, size). */
  modulesDigest: string;
  modulesCount: number;
}

const VERSION = /^\d+\.\d+[\w.+~-]*$/;

/** Compares kernel versions like `sort -V` does for the usual Debian ones. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    if (/^\d+$/.test(x) && /^\d+$/.test(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * The version string in a bzImage's setup header: at 0x202 the magic "HdrS", at 0x20E a
 * pointer (minus 0x200) to a NUL-terminated "6.1.0-28-amd64 (debian-kernel@...) #1 ...".
 */
export async function imageVersion(image: string): Promise<string | undefined> {
  const fh = await open(image, 'r');
  try {
    const header = Buffer.alloc(0x210);
    const { bytesRead } = await fh.read(header, 0, header.length, 0);
    if (bytesRead < header.length || header.toString('latin1', 0x202, 0x206) !== 'HdrS') {
      return undefined;
    }
    const offset = header.readUInt16LE(0x20e) + 0x200;
    const text = Buffer.alloc(256);
    const got = await fh.read(text, 0, text.length, offset);
    const raw = text.toString('latin1', 0, got.bytesRead);
    const version = raw
      .slice(0, raw.indexOf('\0') < 0 ? raw.length : raw.indexOf('\0'))
      .split(' ')[0];
    return version && VERSION.test(version) ? version : undefined;
  } finally {
    await fh.close();
  }
}

/** Resolves a link inside `root` as the sysroot would see it (absolute targets stay inside). */
async function resolveInside(root: string, rel: string): Promise<string | undefined> {
  let current = path.join(root, rel);
  for (let hops = 0; hops < 10; hops++) {
    let target: string;
    try {
      target = await readlink(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EINVAL') return current; // not a link
      return undefined;
    }
    current = path.isAbsolute(target)
      ? path.join(root, target)
      : path.join(path.dirname(current), target);
  }
  return undefined;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function newestImage(sysroot: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(path.join(sysroot, 'boot'));
  } catch {
    return undefined;
  }
  const versions = names
    .filter((n) => n.startsWith('vmlinuz-') && VERSION.test(n.slice('vmlinuz-'.length)))
    .map((n) => n.slice('vmlinuz-'.length))
    .sort(compareVersions);
  const newest = versions.at(-1);
  return newest ? path.join(sysroot, 'boot', `vmlinuz-${newest}`) : undefined;
}

const INSTALL_KERNEL =
  'install the Debian package linux-image-amd64 there, or give the kernel input';

/** Finds the kernel image the `kernel` input (or the sysroot's default) names. */
async function findImage(sysroot: string, input: string | undefined): Promise<string> {
  if (input && !input.includes('/')) {
    if (!VERSION.test(input)) {
      throw inputError('kernel', input, 'a kernel image path or a version like 6.1.0-28-amd64');
    }
    const image = path.join(sysroot, 'boot', `vmlinuz-${input}`);
    if (!(await isFile(image))) {
      throw new DisklessError(
        `kernel ${input}: no ${image}; install the Debian package linux-image-${input} in ${sysroot}`,
      );
    }
    return image;
  }
  if (input) {
    // An absolute path is the sysroot's own (/boot/vmlinuz-X), unless it already lies in it.
    const candidates =
      path.isAbsolute(input) && sysroot !== '/' && !input.startsWith(`${sysroot}/`)
        ? [path.join(sysroot, input), input]
        : [path.resolve(input)];
    for (const c of candidates) {
      if (await isFile(c)) return c;
    }
    throw new DisklessError(
      `Input "kernel": ${candidates.join(' or ')} is not a file; expected a kernel image`,
    );
  }
  const linked = await resolveInside(sysroot, 'vmlinuz');
  if (linked && (await isFile(linked))) return linked;
  const newest = await newestImage(sysroot);
  if (newest) return newest;
  throw new DisklessError(
    `No kernel in ${sysroot}: no /vmlinuz and no /boot/vmlinuz-*; ${INSTALL_KERNEL}`,
  );
}

/** The sorted contents list of a modules directory, hashed. */
async function modulesList(dir: string): Promise<{ digest: string; count: number }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const lines: string[] = [];
  for (const e of entries) {
    const full = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, full);
    const st = await statOrUndefined(full);
    lines.push(
      `${rel}\0${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : 'f'}\0${st ? st.mode.toString(8) : '-'}\0${st?.isFile() ? st.size : 0}`,
    );
  }
  lines.sort();
  return { digest: sha256(lines.join('\n')), count: lines.length };
}

export async function findKernel(sysroot: string, input: string | undefined): Promise<Kernel> {
  const image = await findImage(sysroot, input);
  const fromHeader = await imageVersion(image);
  const base = path.basename(image);
  const named = base.startsWith('vmlinuz-') ? base.slice('vmlinuz-'.length) : '';
  const fromName = VERSION.test(named) ? named : undefined;
  if (fromHeader && fromName && fromHeader !== fromName) {
    throw new DisklessError(
      `kernel ${image}: its header says version ${fromHeader} but its name says ${fromName}; the image and its modules would not match`,
    );
  }
  const version = fromHeader ?? fromName;
  if (!version) {
    throw new DisklessError(
      `kernel ${image}: cannot read its version (not a bzImage and not named vmlinuz-<version>)`,
    );
  }
  if (input && !input.includes('/') && input !== version) {
    throw new DisklessError(
      `Input "kernel": asked for ${input}, but ${image} is version ${version}`,
    );
  }
  // Merged /usr (lib -> usr/lib) or not: never follow a link that could leave the sysroot.
  const merged = path.join(sysroot, 'usr/lib/modules', version);
  const modulesDir = (await isFile(path.join(merged, 'modules.dep')))
    ? merged
    : path.join(sysroot, 'lib/modules', version);
  if (!(await isFile(path.join(modulesDir, 'modules.dep')))) {
    throw new DisklessError(
      `kernel ${version} has no modules in ${modulesDir} (no modules.dep); install the Debian package linux-image-${version} in ${sysroot} so the kernel and its modules match`,
    );
  }
  const modules = await modulesList(modulesDir);
  return {
    image,
    version,
    digest: await sha256File(image),
    mtime: Math.floor((await stat(image)).mtimeMs / 1000),
    modulesDir,
    modulesDigest: modules.digest,
    modulesCount: modules.count,
  };
}
