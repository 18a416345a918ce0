/**
 * What clients mount live from the master is theirs to read too: /usr unless copy-usr,
 * and /home when share-home. These trees never enter a release, so they are scanned on
 * every build, before the comparison with the previous release (an upgrade changes /usr
 * without changing the client root). The first scan reads everything; afterwards only
 * files whose size, times or inode changed since the last clean scan are read. Before
 * that walk, find(1) lists every entry with its ctime and inode: when that listing is
 * the one the last clean scan started from, nothing in the tree changed (writing a file,
 * or renaming, linking, chmod-ing or replacing one, moves its ctime, which no program can
 * set back; a size or modification time cannot change without it) and the walk is
 * skipped, so a rebuild with nothing changed costs a listing, run beside the comparison.
 * The state lives in the state dir: a small head (what the last clean scan started from)
 * read on every build, and each file's signature, read only when the tree changed.
 */
import type { Stats } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { lstatOrUndefined, sha256, writeFileAtomic } from '../files.js';
import { run } from '../process/run.js';
import { humanBytes, type Reporter } from '../report.js';
import { withoutShippedFiles } from '../secrets/packaged.js';
import { scanSecrets, type SecretHit } from '../secrets/scan-tree.js';

function signature(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
}

/** What a clean scan started from (the head of its state). */
interface ScanHead {
  /** What the scan passed files against: the rules' version and the allow list. */
  config: string;
  /** sha256 of the find listing the scan started from. */
  listing: string;
  /** How many files it walked. */
  files: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON object from `file`, or undefined when it is missing or unreadable (a first scan). */
async function readJsonObject(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function readHead(file: string): Promise<ScanHead> {
  const { config, listing, files } = (await readJsonObject(file)) ?? {};
  if (typeof config !== 'string' || typeof listing !== 'string') {
    return { config: '', listing: '', files: 0 };
  }
  // An older state kept the signatures themselves in the head.
  return { config, listing, files: isRecord(files) ? Object.keys(files).length : Number(files) };
}

/**
 * Each file's signature at the last clean scan (thousands of entries: read only to walk);
 * an older state kept them in the head.
 */
async function readSignatures(file: string, headFile: string): Promise<Record<string, string>> {
  const files = (await readJsonObject(file)) ?? (await readJsonObject(headFile))?.files;
  return isRecord(files) && Object.values(files).every((v) => typeof v === 'string')
    ? (files as Record<string, string>)
    : {};
}

// Rules or allow list changed: files the last clean scan passed are read again.
const SCANNER = 'secretlint-11+diskless-1';

/** find(1)'s line for each entry: ctime, inode and path (relative to its start point). */
const ENTRY = '%C@ %i %P\\0';

/** The sha256 of what one find(1) prints, hashed as it streams in. */
async function findDigest(args: readonly string[]): Promise<string> {
  const { stdoutSha256 } = await run('find', args, {
    debianPackage: 'findutils',
    digestStdout: true,
  });
  return stdoutSha256 ?? '';
}

/**
 * The directory of each tree that holds most of its entries: /usr/lib on Debian, where
 * merged /usr puts /lib. A listing of /usr is two finds side by side, one of it and one
 * of the rest, each about half; /home has no such directory and takes one find.
 */
const LARGEST: Record<'usr' | 'home', string | undefined> = { usr: 'lib', home: undefined };

/**
 * The sha256 of every entry under `root` as find(1) prints it: ctime, inode, path. At
 * normal priority: one lstat per entry makes it the longest part of a no-change build
 * (the sample root has 14,000 entries under /usr, and find is the last process to end);
 * while the comparison's rsync mostly sleeps (it polls for its helpers), two finds, each
 * over about half of /usr, end the no-change build about 10% sooner than one find does
 * (bench/rootfs.ts on two cores).
 */
async function listingOf(root: string, largest: string | undefined): Promise<string> {
  const part = largest === undefined ? undefined : path.join(root, largest);
  if (!part || !(await lstatOrUndefined(part))?.isDirectory()) {
    return findDigest([root, '-printf', ENTRY]);
  }
  // -samefile names the directory by its inode, with no pattern to escape in the path.
  const digests = await Promise.all([
    findDigest([root, '-samefile', part, '-prune', '-o', '-printf', ENTRY]),
    findDigest([part, '-printf', ENTRY]),
  ]);
  return sha256(digests.join(' '));
}

/**
 * Scans `source`/`dir` as clients see it at /`dir` and returns its hits; the state is
 * saved only after a clean scan, so files with hits are read again next time.
 */
export async function scanLiveTree(
  o: {
    source: string;
    dir: 'usr' | 'home';
    /** Why clients can read it: the input that makes them mount it. */
    reason: string;
    stateDir: string;
    allow: readonly string[];
  },
  reporter: Reporter,
): Promise<SecretHit[]> {
  const root = path.join(o.source, o.dir);
  if (!(await lstatOrUndefined(root))?.isDirectory()) return [];
  const headFile = path.join(o.stateDir, `scanned-${o.dir}.json`);
  const signaturesFile = path.join(o.stateDir, `scanned-${o.dir}.files.json`);
  const config = sha256(JSON.stringify([SCANNER, o.allow]));
  const [head, listing] = await Promise.all([readHead(headFile), listingOf(root, LARGEST[o.dir])]);
  const same = head.config === config;
  if (same && head.listing === listing) {
    reporter.info(
      `/${o.dir} (${o.reason}): read 0 of ${head.files} file(s) (nothing changed since the last clean scan); 0 hit(s)`,
    );
    return [];
  }
  const before = same ? await readSignatures(signaturesFile, headFile) : {};
  const after: Record<string, string> = {};
  const first = Object.keys(before).length === 0;
  const result = await scanSecrets({
    root,
    prefix: `/${o.dir}`,
    allow: o.allow,
    unchanged: (rel, st) => {
      const sig = signature(st);
      after[rel] = sig;
      return before[rel] === sig;
    },
  });
  const hits = await withoutShippedFiles(result.hits, o.source, (hit) => {
    const rel = hit.path.replace(/^\/+/, '');
    return { file: path.join(o.source, rel), rel };
  });
  reporter.info(
    `/${o.dir} (${o.reason}): read ${result.read} of ${result.files} file(s) (${humanBytes(result.readBytes)}${first ? ', first scan' : ', changed since the last scan'}); ${hits.length} hit(s)`,
  );
  if (hits.length === 0) {
    await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
    // The signatures first: a head names only a listing whose scan completed.
    await writeFileAtomic(signaturesFile, JSON.stringify(after));
    await writeFileAtomic(
      headFile,
      JSON.stringify({ config, listing, files: result.files } satisfies ScanHead),
    );
  }
  return hits;
}

/**
 * Scans what the clients mount from the master: /usr unless copied, /home if shared.
 * The hits fail the build together with the client root's (or alone when nothing else
 * changed), so one run names them all.
 */
export async function scanMountedTrees(
  o: {
    source: string;
    copyUsr: boolean;
    shareHome: boolean;
    stateDir: string;
    secretAllow: readonly string[];
  },
  reporter: Reporter,
): Promise<SecretHit[]> {
  const hits: SecretHit[] = [];
  const common = { source: o.source, stateDir: o.stateDir, allow: o.secretAllow };
  if (!o.copyUsr) {
    hits.push(
      ...(await scanLiveTree({ ...common, dir: 'usr', reason: 'copy-usr is false' }, reporter)),
    );
  }
  if (o.shareHome) {
    hits.push(
      ...(await scanLiveTree({ ...common, dir: 'home', reason: 'share-home is true' }, reporter)),
    );
  }
  return hits;
}
