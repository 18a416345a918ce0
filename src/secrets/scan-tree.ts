/**
 * The last check before anything reaches a client: no private key material and no known
 * credential file in a tree a client can read (the client root, the master's /usr or
 * /home it mounts, the initramfs and the ISO), wherever it came from. Files of any size
 * and kind are read (scan-file.ts); every hit of a run is reported at once, by path and
 * rule, never with contents, unless `secret-allow` names the path.
 *
 * In a versioned build only the files that are not hard links to the previous release
 * are read: those were scanned when it was built (a change of the allow-list makes the
 * build start from a full scan). `unchanged` lets a caller skip files it knows.
 */
import { lstatSync, type Stats } from 'node:fs';
import { readdir, lstat } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { KEY_STORES } from './key-stores.js';
import { scanFile } from './scan-file.js';
import { TokenScanner } from './token-rules.js';
import { lstatOrUndefined } from '../files.js';

/** Files read at the same time. */
const PARALLEL_READS = 8;

/** Credential files known by name (path relative to the root, or a bare name anywhere). */
const CREDENTIAL_PATHS: readonly RegExp[] = [
  /(^|\/)\.git-credentials$/,
  /(^|\/)\.netrc$/,
  /(^|\/)\.pgpass$/,
  /(^|\/)\.my\.cnf$/,
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

/** rsync patterns (key-stores.ts) as a matcher of paths relative to a root. */
function patternMatcher(patterns: readonly string[]): (rel: string) => boolean {
  return allowMatcher(patterns.map((p) => (p.startsWith('/') ? p : `**/${p}`)));
}
const isKeyStore = patternMatcher(KEY_STORES);

export interface SecretHit {
  /** Where a client sees it (the scan's `prefix` and the path in the tree). */
  path: string;
  rule: string;
}

export interface ScanResult {
  hits: SecretHit[];
  /** Regular files and their data in the root (hard links counted once). */
  files: number;
  bytes: number;
  /** Files whose content was read, and their data. */
  read: number;
  readBytes: number;
}

/** At most `n` of the calls run at once. */
function limiter(n: number): <T>(work: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await work();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Walks `root`. `previous` (the previous release) lets it skip files shared with it;
 * `accepted` are paths the build itself put there (the clients' own host keys);
 * `skip` are top-level names that are not part of the tree (tool files); `prefix` is
 * put before each hit's path (`/usr` when the root is the master's /usr).
 */
export async function scanSecrets(o: {
  root: string;
  previous?: string | undefined;
  allow: readonly string[];
  accepted?: readonly string[];
  skip?: readonly string[];
  prefix?: string;
  unchanged?: (rel: string, st: Stats) => boolean;
}): Promise<ScanResult> {
  const allowed = allowMatcher(o.allow);
  const accepted = new Set(o.accepted ?? []);
  const skip = new Set(o.skip ?? []);
  const prefix = o.prefix ?? '';
  const result: ScanResult = { hits: [], files: 0, bytes: 0, read: 0, readBytes: 0 };
  const seen = new Set<number>();
  const dev = (await lstat(o.root)).dev;
  const reads = limiter(PARALLEL_READS);
  const found = new Set<string>();
  /** The path the allow-list sees: relative to the client's /. */
  const full = (rel: string) => `${prefix}/${rel}`.replace(/^\/+/, '');
  const hit = (rel: string, rule: string) => {
    if (allowed(full(rel))) return;
    const shown = `${prefix}/${rel}`;
    const key = `${shown}\0${rule}`;
    if (found.has(key)) return;
    found.add(key);
    result.hits.push({ path: shown, rule });
  };
  const tokens = new TokenScanner(hit);

  /**
   * Decides `rel` by its path when it can (accepted or allowed: no hit; a known credential
   * file or key store: a hit) and says whether it did; false leaves it to the content.
   */
  function decidedByPath(rel: string): boolean {
    if (accepted.has(rel) || allowed(full(rel))) return true;
    if (isKeyStore(rel)) hit(rel, 'key-store');
    else if (CREDENTIAL_PATHS.some((re) => re.test(rel))) hit(rel, 'credential-file');
    else return false;
    return true;
  }

  async function check(rel: string, file: string, st: Stats): Promise<void> {
    if (decidedByPath(rel)) return;
    if (st.size === 0) return;
    if (o.unchanged?.(rel, st)) return;
    if (st.nlink > 1 && o.previous) {
      const old = await lstatOrUndefined(path.join(o.previous, rel));
      if (old && old.ino === st.ino && old.dev === dev) return; // scanned with the previous release
    }
    result.read++;
    result.readBytes += st.size;
    const rules = await reads(() => scanFile(file, rel, tokens));
    for (const rule of rules) hit(rel, rule);
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
        if (!decidedByPath(`${childRel}/`)) pending.push(walk(childRel));
      } else if (entry.isFile()) {
        // Synchronous: a walk of an unchanged tree is all lstat, and the thread pool's
        // round trips would cost more than the calls themselves.
        const st = lstatSync(file);
        if (st.nlink === 1 || !seen.has(st.ino)) {
          seen.add(st.ino);
          result.files++;
          result.bytes += st.size;
        }
        pending.push(check(childRel, file, st));
      } else if (entry.isSymbolicLink()) {
        decidedByPath(childRel); // a link is not read: only its path can be a hit
      }
    }
    await Promise.all(pending);
  }
  await walk('');
  await tokens.flush();
  result.hits.sort((a, b) => a.path.localeCompare(b.path) || a.rule.localeCompare(b.rule));
  return result;
}

/** Hits as the log and errors show them: `path (rule)`, never contents. */
export function showHits(hits: readonly SecretHit[]): string {
  return hits.map((h) => `${h.path} (${h.rule})`).join(', ');
}

/** Fails the build when a scan found anything; the message lists every path and rule. */
export function assertNoSecrets(hits: readonly SecretHit[], where = 'clients could read'): void {
  if (hits.length === 0) return;
  throw new DisklessError(
    `secret scan: ${where} private keys or credentials, ${hits.length} hit(s): ${showHits(hits)}; expected none (remove them from the source or template, exclude them, or list the paths in input "secret-allow")`,
  );
}
