/**
 * build-rootfs: the master's own root becomes a client root release.
 *
 *   check    refuse what would destroy data; read and render the template (nothing touched)
 *   lock     one build per target at a time; the dpkg lock of the source while copying
 *   compare  nothing changed since the previous release: publish nothing
 *   copy     rsync with the exclusions (--link-dest against the previous release)
 *   scrub    the client's own identity (machine-id, ssh host keys)
 *   overlay  the template, rendered; the generated fstab when it has none
 *   var      the /var skeleton archive and the unit that unpacks it at boot
 *   services server-only units masked, client units enabled
 *   scan     no private keys or credentials in the client root
 *   publish  rename into releases/<id>; with publish, switch current atomically
 *   retain   remove old releases that nothing uses any more (retention.ts)
 *
 * buildRootfs is that list, one function per phase over the run's context (check.ts makes
 * it); the phases after the copy are in finish.ts, and what differs between the versioned
 * and the in-place layout is the publisher's (publisher.ts).
 *
 * A versioned build starts from the newest staged release (built, never promoted) when
 * there is one, else from the current one: a staged release that has not passed its boot
 * test yet is not built again when nothing changed, and a rolled-back one is not reused.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Env } from '../env.js';
import { lstatOrUndefined, sha256 } from '../files.js';
import { deferredReporter, humanBytes, type Reporter } from '../report.js';
import { listReleases, newReleaseId, type ReleaseMeta } from '../releases/layout.js';
import { assertNoSecrets, type ScanResult, type SecretHit } from '../secrets/scan-tree.js';
import { check, type Run } from './check.js';
import { overlay, prepareVar, scanClientRoot, scrubIdentity, services } from './finish.js';
import { claimTarget, lockFile, readMarker, type Marker } from './guard.js';
import { scanMountedTrees } from './live-scan.js';
import { holdLocks, type HeldLock } from './lock.js';
import type { BuildRootfsOptions } from './options.js';
import type { TemplateEntry } from './overlay.js';
import { samePrevious, type PreviousRelease } from './publisher.js';
import type { BuildRootfsResult } from './result.js';
import { copy, differences } from './rsync.js';
import type { ServicesResult } from './services.js';
import { CLIENT_KEY_PATHS, clientKeys } from './scrub.js';
import { ClientTree } from './tree.js';
import { buildSkeleton, type Skeleton } from './var-skeleton.js';

/** Bumped when the build's output changes for the same inputs: the next build is a new release. */
const FORMAT = 2;

/** Builds a client root release from the master's root, in the caller's environment. */
export async function buildRootfs(
  options: BuildRootfsOptions,
  reporter: Reporter,
  env: Env,
): Promise<BuildRootfsResult> {
  const run = await check(options, reporter, Date.now(), env);
  await claimTarget(run.target, options.layout);
  const beside = startBeside(run);
  const buildLock = await lock(run, beside);
  try {
    const base = await confirmPrevious(run, beside);
    const dpkgFiles = await dpkgLockFiles(run.source);
    const inputs = await fingerprint(run, beside);
    const unchanged = await compare(run, beside, base, inputs);
    if (unchanged) return unchanged;
    const mounted = await settle(beside, base);
    const { id, root } = await copyRoot(run, base.previous, dpkgFiles);
    const tree = new ClientTree(root, run.publisher.incremental ? base.previous.root : undefined);
    const keys = await scrubIdentity(run, tree, inputs.sshKeyDir);
    await overlay(run, tree, id);
    await prepareVar(run, tree, inputs.skeleton);
    const units = await services(run, tree);
    const scan = await scanClientRoot(run, {
      root,
      previousRoot: scanSince(run, base, inputs),
      keys,
      mounted,
    });
    const meta = releaseMeta(id, base, inputs, tree, scan);
    const published = await reporter.group('Publish', () =>
      run.publisher.publish(meta, root, base.previous, base.marker),
    );
    return await builtResult(run, base, meta, published, units);
  } finally {
    await run.publisher.discard();
    await buildLock.release();
  }
}

/**
 * What runs beside the lock. The comparison with the previous release (an rsync dry run)
 * and the scan of what clients mount (a find) are processes of their own: once the inputs
 * are checked, both start and run beside the lock, the skeleton and the fingerprint. The
 * scan only reads the source (and writes its state only after a clean scan).
 * The comparison starts from a guess of the previous release made before the lock: it
 * counts only if the guess still holds under the lock (no other build ran meanwhile),
 * and only if the fingerprint matches. The scan's lines are printed once it is done.
 */
interface Beside {
  guessed: Promise<{ previous: PreviousRelease; comparison: Promise<string[]> | undefined }>;
  /** The scan of what clients mount, in its own log group (awaited once). */
  mountedHits: () => Promise<SecretHit[]>;
  /** The /var skeleton walked while the lock was taken. */
  early: Promise<Skeleton>;
  /** The lock was held by another build: what was read before it may be stale. */
  waited: boolean;
}

/** The comparison (rsync dry run) of the source with a previous release, if there is one. */
function compareWith(run: Run, p: PreviousRelease): Promise<string[]> | undefined {
  return p.root
    ? differences({
        source: run.source,
        dest: p.root,
        excludes: run.excludes,
        managed: p.meta?.managed ?? [],
        toolFiles: run.publisher.toolFiles,
      })
    : undefined;
}

function skeletonOf(run: Run): Promise<Skeleton> {
  return buildSkeleton({ source: run.source, varDirs: run.options.varDirs });
}

/** Starts the guessed comparison, then the mounted scan and the /var skeleton walk. */
function startBeside(run: Run): Beside {
  const { options, reporter, source } = run;
  const guessed = run.publisher.previous(run.marker).then((previous) => {
    const comparison = compareWith(run, previous);
    comparison?.catch(() => undefined); // awaited below, or replaced
    return { previous, comparison };
  });
  guessed.catch(() => undefined); // awaited below
  const mountedLog = deferredReporter();
  // The scan's find starts once rsync has: spawning one blocks this thread for a few
  // milliseconds, and rsync's comparison is what both a no-change build and a copy wait on.
  const startScan = () => scanMountedTrees({ ...options, source }, mountedLog.reporter);
  const mountedScan = guessed.then(startScan, startScan);
  mountedScan.catch(() => undefined); // awaited below
  const mountedHits = () =>
    reporter.group('Scan what clients mount from the master', async () => {
      try {
        return await mountedScan;
      } finally {
        mountedLog.replay(reporter);
      }
    });
  // The /var skeleton only reads the source: walk it while the lock is taken, and again
  // only if we had to wait for another build (the master may have changed meanwhile).
  // It starts once the comparison is on its way: its many small reads would otherwise
  // queue the comparison's few lookups behind them in libuv's thread pool.
  const early = guessed.then(
    () => skeletonOf(run),
    () => skeletonOf(run),
  );
  early.catch(() => undefined); // awaited below
  return { guessed, mountedHits, early, waited: false };
}

/**
 * lock: one build of a target at a time. The lock's holder process is spawned once the
 * comparison is on its way (a spawn blocks this thread for a moment).
 */
async function lock(run: Run, beside: Beside): Promise<HeldLock> {
  await beside.guessed.catch(() => undefined);
  return holdLocks([await lockFile(run.target)], () => {
    beside.waited = true;
    run.reporter.info(`Another build of ${run.target} is running; waiting for it to finish`);
  });
}

/** The previous release as read under the lock, and the comparison with it. */
interface Base {
  marker: Marker | undefined;
  previous: PreviousRelease;
  comparison: Promise<string[] | undefined> | undefined;
}

/** Under the lock: the previous release again; the guessed comparison counts if it holds. */
async function confirmPrevious(run: Run, beside: Beside): Promise<Base> {
  const marker = await readMarker(run.target);
  const previous = await run.publisher.previous(marker);
  const guess = await beside.guessed.catch(() => undefined);
  const comparison =
    guess && !beside.waited && samePrevious(guess.previous, previous)
      ? guess.comparison?.catch(() => compareWith(run, previous)) // a failed guess runs again
      : compareWith(run, previous);
  comparison?.catch(() => undefined); // awaited below
  await run.publisher.clean();
  return { marker, previous, comparison };
}

/** The dpkg lock files of the source that exist (taken while copying). */
async function dpkgLockFiles(source: string): Promise<string[]> {
  const files: string[] = [];
  for (const name of ['lock-frontend', 'lock']) {
    const file = path.join(source, 'var/lib/dpkg', name);
    if ((await lstatOrUndefined(file))?.isFile()) files.push(file);
  }
  return files;
}

function hashEntries(entries: readonly TemplateEntry[]): string {
  return sha256(
    entries
      .map((e) =>
        e.kind === 'file'
          ? `f ${e.rel} ${e.mode} ${sha256(e.data)}\n`
          : e.kind === 'dir'
            ? `d ${e.rel} ${e.mode}\n`
            : `l ${e.rel} ${e.target}\n`,
      )
      .join(''),
  );
}

async function hashFiles(dir: string, names: readonly string[]): Promise<string> {
  return sha256(Buffer.concat(await Promise.all(names.map((n) => readFile(path.join(dir, n))))));
}

/** Everything a release is made from besides the source's files, and its hash. */
interface Inputs {
  skeleton: Skeleton;
  /** The clients' ssh host keys, when they get the same ones. */
  sshKeyDir: string | undefined;
  fingerprint: string;
}

/** The build's fingerprint: a previous release with the same one differs only by the source. */
async function fingerprint(run: Run, beside: Beside): Promise<Inputs> {
  const { options, source } = run;
  const skeleton = beside.waited ? await skeletonOf(run) : await beside.early;
  let sshKeyDir: string | undefined;
  if (
    options.clientSshKeys &&
    !options.hostKeysAtBoot &&
    (await lstatOrUndefined(path.join(source, 'etc/ssh')))?.isDirectory()
  ) {
    sshKeyDir = await clientKeys(options.stateDir, run.reporter);
  }
  const hash = sha256(
    JSON.stringify({
      format: FORMAT,
      source,
      excludes: run.excludes,
      copyUsr: options.copyUsr,
      mask: options.maskServices,
      enable: options.enableServices,
      template: hashEntries(run.template),
      fstab: run.fstab,
      skeleton: skeleton.sha256,
      keys: sshKeyDir
        ? await hashFiles(
            sshKeyDir,
            CLIENT_KEY_PATHS.map((p) => path.basename(p)),
          )
        : null,
      allow: options.secretAllow,
      accounts: [...run.accounts],
      bootKeys: options.hostKeysAtBoot,
    }),
  );
  return { skeleton, sshKeyDir, fingerprint: hash };
}

/**
 * compare: nothing changed since the previous release (same fingerprint, no difference in
 * the source) publishes nothing; returns the step's result then.
 */
async function compare(
  run: Run,
  beside: Beside,
  { previous, comparison }: Base,
  inputs: Inputs,
): Promise<BuildRootfsResult | undefined> {
  const { reporter } = run;
  const previousMeta = previous.meta;
  if (previous.root && previousMeta?.fingerprint === inputs.fingerprint) {
    const diff = await reporter.group('Compare with the previous release', async () => {
      const lines = (await comparison) ?? [];
      reporter.info(
        lines.length === 0
          ? `Nothing differs from ${previousMeta.id}`
          : `${lines.length} difference(s) from ${previousMeta.id}, e.g. ${lines.slice(0, 3).join('; ')}`,
      );
      return lines;
    });
    if (diff.length === 0) {
      assertNoSecrets(await beside.mountedHits());
      // Unchanged: nothing new.
      const kept = await run.publisher.unchanged({ ...previous, meta: previousMeta });
      return resultOf(run, {
        root: previous.root,
        meta: previousMeta,
        changed: false,
        published: kept.published,
        previous: undefined,
        promoted: kept.promoted,
        current: undefined,
        services: undefined,
        retention: kept.rows,
      });
    }
  } else if (previousMeta) {
    reporter.info(
      `The build's inputs (template, options, /var skeleton or keys) changed since ${previousMeta.id}`,
    );
  }
  return undefined;
}

/** Before the copy: the comparison ends and the mounted scan's findings are in. */
async function settle(beside: Beside, base: Base): Promise<SecretHit[]> {
  // Not needed, but not left running while the copy writes where it reads.
  await base.comparison?.catch(() => undefined);
  return beside.mountedHits();
}

/** copy: rsync with the exclusions into a new release (--link-dest against the previous). */
async function copyRoot(
  run: Run,
  previous: PreviousRelease,
  dpkgFiles: readonly string[],
): Promise<{ id: string; root: string }> {
  const { reporter, publisher, source } = run;
  // Taken only to copy: a no-change rebuild never blocks apt on the master. The
  // compare before it only reads; if apt is half-way, it sees a difference and the
  // copy then waits for apt to finish.
  let dpkgLock: HeldLock | undefined;
  if (dpkgFiles.length > 0) {
    dpkgLock = await holdLocks(dpkgFiles, (file) => {
      reporter.info(`Waiting for the dpkg lock of the source (${file}): apt or dpkg is running`);
    });
  } else {
    reporter.info(`The source has no dpkg lock files; copying without holding them`);
  }
  try {
    const id = newReleaseId(new Date(), await listReleases(run.target));
    const root = await publisher.stage(id);
    const linkDest = publisher.incremental ? previous.root : undefined;
    await reporter.group(`Copy ${source} with rsync`, async () => {
      const stats = await copy(
        {
          source,
          dest: root,
          excludes: run.excludes,
          linkDest,
          deleteExcluded: !publisher.incremental,
          toolFiles: publisher.toolFiles,
        },
        reporter,
      );
      reporter.info(
        `Copied ${stats.transferred} file(s), ${humanBytes(stats.transferredBytes)}${linkDest ? `; the rest are hard links to ${previous.id ?? ''}` : ''}`,
      );
    });
    return { id, root };
  } finally {
    await dpkgLock?.release();
  }
}

/**
 * The release the scan reads only the differences from: the previous one, when it stays
 * as it was and the build's inputs did not change (else every file is read).
 */
function scanSince(run: Run, { previous }: Base, inputs: Inputs): string | undefined {
  const fullScan =
    !previous.meta ||
    !run.publisher.incremental ||
    previous.meta.fingerprint !== inputs.fingerprint;
  return fullScan ? undefined : previous.root;
}

function releaseMeta(
  id: string,
  { previous }: Base,
  inputs: Inputs,
  tree: ClientTree,
  scan: ScanResult,
): ReleaseMeta {
  return {
    id,
    created: new Date().toISOString(),
    previous: previous.meta?.id,
    fingerprint: inputs.fingerprint,
    managed: [...tree.managed].sort(),
    files: scan.files,
    bytes: scan.bytes,
  };
}

/** The result of a build that made a new release (then retention runs). */
async function builtResult(
  run: Run,
  { previous }: Base,
  meta: ReleaseMeta,
  published: { root: string; live: boolean },
  units: ServicesResult,
): Promise<BuildRootfsResult> {
  return resultOf(run, {
    root: published.root,
    meta,
    changed: true,
    published: published.live,
    previous: previous.meta?.id,
    promoted: false,
    current: previous.current,
    services: units,
    retention: await run.publisher.retain(),
  });
}

/** The step's result, timed. */
function resultOf(
  run: Run,
  o: Omit<BuildRootfsResult, 'release' | 'files' | 'bytes' | 'seconds'> & {
    meta: Pick<ReleaseMeta, 'id' | 'files' | 'bytes'>;
  },
): BuildRootfsResult {
  const { meta, ...rest } = o;
  return {
    ...rest,
    release: meta.id,
    files: meta.files,
    bytes: meta.bytes,
    seconds: Math.round((Date.now() - run.started) / 100) / 10,
  };
}
