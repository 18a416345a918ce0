/**
 * The last check before a release is published: no private key material and no known
 * credential file in the client root, wherever it came from (the master, the template).
 * A hit fails the build listing paths only, never contents, unless `secret-allow` names
 * the path.
 *
 * To stay fast it reads only small text files, and in a versioned build only the files
 * that are not hard links to the previous release: those were scanned when it was built
 * (a change of the allow-list makes the build start from a full scan).
 */
import type { Stats } from 'node:fs';
import { open, readdir, lstat } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lstatOrUndefined } from './tree.js';

/** Files larger than this are not read (keys are a few KiB; PEM bundles stay below). */
const MAX_READ = 256 * 1024;

const KEY_MARKERS = [
  /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/,
  /PuTTY-User-Key-File-\d+:/,
];

/** Credential files known by name (path relative to the root, or a bare name anywhere). */
const CREDENTIAL_PATHS: readonly RegExp[] = [
  /(^|\/)\.git-credentials$/,
  /(^|\/)\.netrc$/,
  /(^|\/)\.pgpass$/,
  /(^|\/)\.credentials(_rsaparams)?$/,
  /(^|\/)\.runner$/,
  /(^|\/)\.aws\/credentials$/,
  /(^|\/)\.s3cfg$/,
  /(^|\/)\.docker\/config\.json$/,
  /(^|\/)\.kube\/config$/,
  /(^|\/)[^/]*\.keytab$/,
  /(^|\/)\.ssh\/id_[^/]*$/,
  /^etc\/ssh\/ssh_host_[^/]*_key$/,
  /^etc\/ssl\/private\/[^/]+$/,
  /^etc\/default\/elastichosts$/,
  /^etc\/(g?shadow|passwd|group)-$/,
  /^etc\/NetworkManager\/system-connections\/[^/]+$/,
  /(^|\/)credential\.secret$/,
];

/** An allow-list line as a matcher: an exact path, `dir/` for a tree, `*` and `**` globs. */
export function allowMatcher(lines: readonly string[]): (rel: string) => boolean {
  const res = lines.map((line) => {
    const clean = line.trim().replace(/^\/+/, '');
    const dir = clean.endsWith('/');
    const body = clean
      .replace(/\/+$/, '')
      .split(/(\*\*|\*|\?)/)
      .map((part) =>
        part === '**'
          ? '.*'
          : part === '*'
            ? '[^/]*'
            : part === '?'
              ? '[^/]'
              : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
      )
      .join('');
    return new RegExp(`^${body}${dir ? '(/.*)?' : ''}$`);
  });
  return (rel) => res.some((re) => re.test(rel));
}

export interface ScanResult {
  hits: string[];
  /** Regular files and their data in the root (hard links counted once). */
  files: number;
  bytes: number;
  /** Files whose content was read. */
  read: number;
}

async function hasKeyMaterial(file: string, size: number): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buf, 0, size, 0);
    const data = buf.subarray(0, bytesRead);
    // Binaries (ssh-keygen, libcrypto) carry the marker as a string constant, not a key.
    if (data.subarray(0, 8192).includes(0)) return false;
    const text = data.toString('latin1');
    return KEY_MARKERS.some((re) => re.test(text));
  } finally {
    await handle.close();
  }
}

/**
 * Walks `root`. `previous` (the previous release) lets it skip files shared with it;
 * `accepted` are paths the build itself put there (the clients' own host keys);
 * `skip` are top-level names that are not part of the client root (tool files).
 */
export async function scanSecrets(o: {
  root: string;
  previous: string | undefined;
  allow: readonly string[];
  accepted: readonly string[];
  skip?: readonly string[];
}): Promise<ScanResult> {
  const allowed = allowMatcher(o.allow);
  const accepted = new Set(o.accepted);
  const skip = new Set(o.skip ?? []);
  const result: ScanResult = { hits: [], files: 0, bytes: 0, read: 0 };
  const seen = new Set<number>();
  const dev = (await lstat(o.root)).dev;

  /**
   * Decides `rel` by its path when it can (accepted or allowed: no hit; a known credential
   * file: a hit) and says whether it did; false leaves it to the content.
   */
  function decidedByPath(rel: string): boolean {
    if (accepted.has(rel) || allowed(rel)) return true;
    if (!CREDENTIAL_PATHS.some((re) => re.test(rel))) return false;
    result.hits.push(`/${rel}`);
    return true;
  }

  async function check(rel: string, file: string, st: Stats): Promise<void> {
    if (decidedByPath(rel)) return;
    if (st.size === 0 || st.size > MAX_READ) return;
    if (st.nlink > 1 && o.previous) {
      const old = await lstatOrUndefined(path.join(o.previous, rel));
      if (old && old.ino === st.ino && old.dev === dev) return; // scanned with the previous release
    }
    result.read++;
    if (await hasKeyMaterial(file, st.size)) result.hits.push(`/${rel}`);
  }

  async function walk(rel: string): Promise<void> {
    const dir = rel ? path.join(o.root, rel) : o.root;
    const entries = await readdir(dir, { withFileTypes: true });
    const pending: Promise<void>[] = [];
    for (const entry of entries) {
      if (!rel && skip.has(entry.name)) continue;
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        pending.push(walk(childRel));
      } else if (entry.isFile()) {
        pending.push(
          lstat(file).then(async (st) => {
            if (st.nlink === 1 || !seen.has(st.ino)) {
              seen.add(st.ino);
              result.files++;
              result.bytes += st.size;
            }
            await check(childRel, file, st);
          }),
        );
      } else if (entry.isSymbolicLink()) {
        decidedByPath(childRel); // a link is not read: only its path can be a hit
      }
    }
    await Promise.all(pending);
  }
  await walk('');
  result.hits.sort();
  return result;
}

/** Fails the build when the scan found anything; the message lists paths only. */
export function assertNoSecrets(hits: readonly string[]): void {
  if (hits.length === 0) return;
  const shown = hits.slice(0, 20).join(', ');
  const more = hits.length > 20 ? ` and ${hits.length - 20} more` : '';
  throw new DisklessError(
    `secret scan: the client root would hold private keys or credentials at ${shown}${more}; expected none (remove them from the source or template, exclude them, or list the paths in input "secret-allow")`,
  );
}
