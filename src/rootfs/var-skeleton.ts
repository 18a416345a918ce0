/**
 * The client's /var is an empty tmpfs at boot (the 2011 populate_var). The build takes a
 * skeleton of the master's /var (its directories and symlinks with owners and modes, but
 * no files: no logs, caches, apt lists or spools) plus the `var-dirs` entries, and writes
 * it as one tar archive, which a unit of the client root unpacks into /var before anything
 * else needs it. One archive beats thousands of small files over NFS (e2e-boot.md).
 *
 * The archive is written here (GNU tar format, read by the client's GNU tar) so it is
 * byte-for-byte the same for the same skeleton: an unchanged /var costs nothing.
 */
import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError, inputError } from '../errors.js';
import { lstatOrUndefined, readTextIfExists, sha256 } from '../files.js';

export const SKELETON = 'etc/diskless/var-skel.tar';
export const POPULATE_UNIT = 'diskless-populate-var.service';

export const POPULATE_UNIT_TEXT = `# Written by diskless-node build-rootfs: fills the client's tmpfs /var at boot.
[Unit]
Description=Fill the tmpfs /var from the diskless skeleton
DefaultDependencies=no
RequiresMountsFor=/var
ConditionPathExists=/${SKELETON}
Conflicts=shutdown.target
Before=local-fs.target shutdown.target systemd-tmpfiles-setup.service systemd-journal-flush.service systemd-random-seed.service systemd-update-utmp.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/tar --extract --file=/${SKELETON} --directory=/var --same-owner --preserve-permissions --warning=no-timestamp

[Install]
WantedBy=local-fs.target
`;

export interface SkeletonEntry {
  /** Path relative to /var, no leading or trailing slash. */
  rel: string;
  kind: 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  target?: string;
}

/** Subtrees whose directories are not carried over (their top directory is). */
const SKIP_BELOW = ['tmp', 'lib/docker', 'lib/containers', 'lib/diskless', 'cache/diskless'];

export interface Accounts {
  users: Map<string, { uid: number; gid: number }>;
  groups: Map<string, number>;
  userNames: Map<number, string>;
  groupNames: Map<number, string>;
}

/** The users and groups of a root (its etc/passwd and etc/group). */
export async function readAccounts(root: string): Promise<Accounts> {
  const a: Accounts = {
    users: new Map(),
    groups: new Map(),
    userNames: new Map(),
    groupNames: new Map(),
  };
  for (const line of ((await readTextIfExists(path.join(root, 'etc/passwd'))) ?? '').split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    a.users.set(name, { uid: Number(uid), gid: Number(gid) });
    if (!a.userNames.has(Number(uid))) a.userNames.set(Number(uid), name);
  }
  for (const line of ((await readTextIfExists(path.join(root, 'etc/group'))) ?? '').split('\n')) {
    const [name, , gid] = line.split(':');
    if (!name || gid === undefined) continue;
    a.groups.set(name, Number(gid));
    if (!a.groupNames.has(Number(gid))) a.groupNames.set(Number(gid), name);
  }
  return a;
}

/** Directories and symlinks under `varDir`, without files or other filesystems. */
async function scanVar(varDir: string): Promise<SkeletonEntry[]> {
  const top = await lstatOrUndefined(varDir);
  if (!top?.isDirectory()) return [];
  const dev = top.dev;
  const skipped = new Set(SKIP_BELOW);
  const out: SkeletonEntry[] = [];
  async function walk(rel: string): Promise<void> {
    const dir = path.join(varDir, rel);
    let dirents;
    try {
      dirents = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // vanished meanwhile
      throw error;
    }
    // Only directories and symlinks go into the skeleton: files (thousands under
    // /var/lib/dpkg alone) are skipped without an lstat each.
    const names = dirents
      .filter((d) => d.isDirectory() || d.isSymbolicLink())
      .map((d) => d.name)
      .sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (name === 'lost+found') continue;
      const st = await lstatOrUndefined(path.join(varDir, childRel));
      if (!st) continue;
      const base = { rel: childRel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isSymbolicLink()) {
        out.push({ ...base, kind: 'symlink', target: await readlink(path.join(varDir, childRel)) });
      } else if (st.isDirectory()) {
        out.push({ ...base, kind: 'dir' });
        if (st.dev === dev && !skipped.has(childRel)) await walk(childRel);
      }
    }
  }
  await walk('');
  return out;
}

/** Adds the `var-dirs` lines (`path [owner[:group]] [mode]`) to the skeleton. */
export function addVarDirs(
  entries: SkeletonEntry[],
  lines: readonly string[],
  accounts: Accounts,
): SkeletonEntry[] {
  const byPath = new Map(entries.map((e) => [e.rel, e]));
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    const rawPath = fields[0] ?? '';
    const rest = fields.slice(1);
    const modeText =
      rest.length > 0 && /^[0-7]{3,4}$/.test(rest[rest.length - 1] ?? '') ? rest.pop() : undefined;
    const ownerText = rest[0];
    const rel = path.posix.normalize(rawPath).replace(/\/+$/, '');
    if (rel === '.' || rel.startsWith('..') || rel.startsWith('/')) {
      throw inputError('var-dirs', line, 'a path inside /var, relative to it');
    }
    let uid = 0;
    let gid = 0;
    if (ownerText) {
      const [user = '', group] = ownerText.split(':');
      const u = accounts.users.get(user);
      if (!u) {
        throw inputError(
          'var-dirs',
          line,
          `a user of the client root, and it has no user "${user}"`,
        );
      }
      uid = u.uid;
      gid = u.gid;
      if (group !== undefined) {
        const g = accounts.groups.get(group);
        if (g === undefined) {
          throw inputError(
            'var-dirs',
            line,
            `a group of the client root, and it has no group "${group}"`,
          );
        }
        gid = g;
      }
    }
    const mode = modeText ? parseInt(modeText, 8) : 0o755;
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = byPath.get(parent);
      if (existing?.kind === 'symlink') {
        throw new DisklessError(
          `Input "var-dirs": got ${JSON.stringify(line)}; /var/${parent} is a symlink in the skeleton, expected a directory`,
        );
      }
      if (!existing) byPath.set(parent, { rel: parent, kind: 'dir', mode: 0o755, uid: 0, gid: 0 });
    }
    byPath.set(rel, { rel, kind: 'dir', mode, uid, gid });
  }
  return [...byPath.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

// ---- GNU tar writer (directories and symlinks only) ----

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(o: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  type: string;
  linkname?: string;
  uname?: string;
  gname?: string;
}): Buffer {
  const h = Buffer.alloc(512);
  h.write(o.name, 0, 100, 'utf8');
  h.write(octal(o.mode, 8), 100);
  h.write(octal(o.uid, 8), 108);
  h.write(octal(o.gid, 8), 116);
  h.write(octal(o.size, 12), 124);
  h.write(octal(0, 12), 136); // mtime: fixed, so the archive is reproducible
  h.write('        ', 148);
  h.write(o.type, 156);
  h.write(o.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar  \0', 257, 'binary');
  h.write(o.uname ?? '', 265, 31, 'utf8');
  h.write(o.gname ?? '', 297, 31, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'binary');
  return h;
}

/** `data` padded with zeros to a whole number of `size` blocks. */
function padded(data: Buffer, size = 512): Buffer {
  return Buffer.concat([data, Buffer.alloc((size - (data.length % size)) % size)]);
}

/** A GNU long-name ('L') or long-link ('K') record when `value` does not fit in 100 bytes. */
function longRecord(type: 'L' | 'K', value: string): Buffer[] {
  const data = Buffer.from(`${value}\0`, 'utf8');
  if (data.length <= 100) return [];
  return [
    header({ name: '././@LongLink', mode: 0, uid: 0, gid: 0, size: data.length, type }),
    padded(data),
  ];
}

export function skeletonTar(entries: readonly SkeletonEntry[], accounts: Accounts): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const name = e.kind === 'dir' ? `./${e.rel}/` : `./${e.rel}`;
    blocks.push(...longRecord('L', name));
    if (e.kind === 'symlink') blocks.push(...longRecord('K', e.target ?? ''));
    blocks.push(
      header({
        name,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size: 0,
        type: e.kind === 'dir' ? '5' : '2',
        linkname: e.target ?? '',
        uname: accounts.userNames.get(e.uid) ?? '',
        gname: accounts.groupNames.get(e.gid) ?? '',
      }),
    );
  }
  blocks.push(Buffer.alloc(1024));
  // Round up to tar's default 10 KiB record, as GNU tar writes it.
  return padded(Buffer.concat(blocks), 20 * 512);
}

export interface Skeleton {
  entries: SkeletonEntry[];
  tar: Buffer;
  sha256: string;
}

export async function buildSkeleton(o: {
  source: string;
  varDirs: readonly string[];
}): Promise<Skeleton> {
  const accounts = await readAccounts(o.source);
  const scanned = await scanVar(path.join(o.source, 'var'));
  const entries = addVarDirs(scanned, o.varDirs, accounts);
  const tar = skeletonTar(entries, accounts);
  return { entries, tar, sha256: sha256(tar) };
}
