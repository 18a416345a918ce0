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
 * A versioned build starts from the newest staged release (built, never promoted) when
 * there is one, else from the current one: a staged release that has not passed its boot
 * test yet is not built again when nothing changed, and a rolled-back one is not reused.
 */
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DisklessError, inputError } from '../errors.js';
import { lstatOrUndefined, sha256 } from '../files.js';
import { deferredReporter, humanBytes, type Reporter, type StepReport } from '../report.js';
import { clientAccounts, writeAccounts } from './accounts.js';
import { BOOT_KEYS_UNIT, installBootHostKeys } from './boot-host-keys.js';
import { exclusions } from './exclusions.js';
import { checkFstab, FSTAB, generateFstab } from './fstab.js';
import {
  checkPaths,
  claimTarget,
  lockFile,
  readMarker,
  TOOL_FILES,
  writeMarker,
  type Layout,
  type Marker,
} from './guard.js';
import { scanMountedTrees } from './live-scan.js';
import { holdLocks, type HeldLock } from './lock.js';
import type { BuildRootfsOptions } from './options.js';
import { applyTemplate, loadTemplate, type TemplateEntry, type TemplateValues } from './overlay.js';
import { everPromoted, readHistory, whoRan } from '../releases/history.js';
import { releasesInUse } from '../releases/in-use.js';
import {
  compareIds,
  CURRENT,
  currentId,
  listReleases,
  newReleaseId,
  PARTIAL,
  readMeta,
  RELEASES,
  removePartials,
  removeRelease,
  writeMeta,
  type ReleaseMeta,
} from '../releases/layout.js';
import { makeCurrent } from '../releases/promote.js';
import {
  applyRetention,
  planRetention,
  releaseMetas,
  retentionRows,
} from '../releases/retention.js';
import { copy, differences } from './rsync.js';
import { CLIENT_KEY_PATHS, clientKeys, scrub } from './scrub.js';
import { withoutShippedFiles } from '../secrets/packaged.js';
import { assertNoSecrets, scanSecrets, type SecretHit } from '../secrets/scan-tree.js';
import { configureServices } from './services.js';
import { ClientTree } from './tree.js';
import { buildSkeleton, POPULATE_UNIT, POPULATE_UNIT_TEXT, SKELETON } from './var-skeleton.js';

/** Bumped when the build's output changes for the same inputs: the next build is a new release. */
const FORMAT = 2;
/** The release id inside the root, for the client (and its operator) to read. */
const RELEASE_FILE = 'etc/diskless/release';
/** agetty shows /etc/issue.d/*.issue at the console login prompt. */
const ISSUE_FILE = 'etc/issue.d/diskless-release.issue';

function templateValues(o: BuildRootfsOptions, nfsRoot: string, usrExport: string): TemplateValues {
  const values: TemplateValues = {
    NFS_SERVER: { value: o.nfsServer, input: 'nfs-server' },
    NFS_ROOT: { value: nfsRoot, input: 'target' },
    USR_ROOT: { value: usrExport, input: 'source' },
    CLIENT_HOSTNAME: { value: o.clientHostname, input: 'client-hostname' },
    MASTER_HOSTNAME: { value: os.hostname(), input: 'the master' },
  };
  for (const line of o.templateValues) {
    const eq = line.indexOf('=');
    const name = line.slice(0, eq);
    if (Object.hasOwn(values, name) && values[name]?.input !== 'template-values') {
      throw inputError(
        'template-values',
        line,
        `a name other than the built-in {{${name}}} (set it through input "${values[name]?.input ?? ''}")`,
      );
    }
    values[name] = { value: line.slice(eq + 1), input: 'template-values' };
  }
  return values;
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

/**
 * The release a build starts from: in place, what the marker says the last build made
 * of the target itself; versioned, the newest staged release (newer than current and never
 * promoted), else the current one, else the newest (its root even when its metadata is
 * lost). `current` is what `current` points at.
 */
interface PreviousRelease {
  id?: string;
  meta?: ReleaseMeta;
  root?: string;
  current?: string;
}

async function previousRelease(
  target: string,
  layout: Layout,
  marker: Marker | undefined,
): Promise<PreviousRelease> {
  if (layout === 'in-place') {
    const meta = marker?.last as ReleaseMeta | undefined;
    return { meta, root: meta ? target : undefined };
  }
  const current = await currentId(target);
  const ids = await listReleases(target);
  const promoted = everPromoted(await readHistory(target));
  const staged = ids.filter(
    (id) => !promoted.has(id) && (current === undefined || compareIds(id, current) > 0),
  );
  const id = staged.at(-1) ?? current ?? ids.at(-1);
  if (!id) return {};
  return { id, meta: await readMeta(target, id), root: path.join(target, RELEASES, id), current };
}

/** Whether two looks at the previous release saw the same one (a comparison with it holds). */
function samePrevious(a: PreviousRelease, b: PreviousRelease): boolean {
  return JSON.stringify([a.id, a.root, a.meta]) === JSON.stringify([b.id, b.root, b.meta]);
}

/**
 * Retention after a build: what nothing uses any more goes. Never fails the build (its
 * release is complete and may be live): a failure is a warning and everything stays.
 */
async function retain(
  target: string,
  options: BuildRootfsOptions,
  reporter: Reporter,
): Promise<[string, string][]> {
  try {
    return await reporter.group('Retention', async () => {
      const ids = await listReleases(target);
      const current = await currentId(target);
      const inUse = await releasesInUse({
        target,
        current,
        mountTables: options.nfsMounts,
        keepReleases: options.keepReleases,
      });
      for (const problem of inUse.problems) reporter.warning(`Retention: ${problem}`);
      const plan = planRetention({
        ids,
        metas: await releaseMetas(target, ids),
        history: await readHistory(target),
        inUse,
        keep: options.keep,
        keepDays: options.keepDays,
        now: Date.now(),
      });
      for (const [id, why] of plan.keep) reporter.info(`Keeping ${id}: ${why.join('; ')}`);
      const removed = await applyRetention(target, plan, reporter);
      return retentionRows(plan, removed);
    });
  } catch (error) {
    reporter.warning(`Retention did not run, nothing was removed: ${(error as Error).message}`);
    return [['Releases removed', 'none (retention failed, see the warnings)']];
  }
}

/** The step's outputs and summary; `started` is the build's start (Date.now()). */
function stepReport(o: {
  root: string;
  meta: Pick<ReleaseMeta, 'id' | 'files' | 'bytes'>;
  changed: boolean;
  /** Shown after the release id. */
  note: string;
  /** Rows after Files. */
  rows: [string, string][];
  /** The release is current now. */
  published: boolean;
  started: number;
}): StepReport {
  const duration = Math.round((Date.now() - o.started) / 100) / 10;
  return {
    outputs: {
      root: o.root,
      release: o.meta.id,
      changed: o.changed,
      published: o.published,
      files: o.meta.files,
      bytes: o.meta.bytes,
      duration,
    },
    summary: [
      ['Client root', o.root],
      ['Release', `${o.meta.id}${o.note}`],
      ['Files', `${o.meta.files} (${humanBytes(o.meta.bytes)})`],
      ...o.rows,
      ['Duration', `${duration} s`],
    ],
  };
}

/** Builds a client root release from the master's root. */
export async function buildRootfs(
  options: BuildRootfsOptions,
  reporter: Reporter,
): Promise<StepReport> {
  const started = Date.now();
  const layout: Layout = options.layout;

  // ---- check: every refusal, before anything is touched ----
  const checked = await reporter.group('Check the source, target and template', async () => {
    const c = await checkPaths({
      source: options.source,
      target: options.target,
      template: options.template,
      layout,
    });
    reporter.info(`source ${c.source}, target ${c.target} (${layout}${c.marker ? '' : ', new'})`);
    return c;
  });
  const { source, target } = checked;
  const excludes = exclusions({
    source,
    target,
    stateDir: options.stateDir,
    copyUsr: options.copyUsr,
    extra: options.exclude,
    env: process.env,
  });
  const nfsRoot = layout === 'versioned' ? path.join(target, CURRENT) : target;
  const usrExport = path.join(source, 'usr');
  const values = templateValues(options, nfsRoot, usrExport);
  const template = options.template ? await loadTemplate(options.template, values) : [];
  const templateFstab = template.find((e) => e.rel === FSTAB);
  let fstab: string | undefined;
  if (templateFstab?.kind === 'file') {
    checkFstab(templateFstab.data.toString('utf8'), {
      copyUsr: options.copyUsr,
      shareHome: options.shareHome,
      from: templateFstab.from,
    });
  } else if (templateFstab) {
    throw new DisklessError(`template: ${FSTAB} must be a file; expected the client's fstab`);
  } else {
    fstab = generateFstab({
      ...options,
      usrExport,
      homeExport: path.join(source, 'home'),
    });
  }
  const accounts = await clientAccounts(source, options);
  if (layout === 'in-place') {
    reporter.warning(
      `layout is in-place: ${target} is synced in place, and running clients see every change as it happens; the versioned layout publishes immutable releases instead`,
    );
  }

  // ---- lock: one build of a target at a time ----
  await claimTarget(target, layout);
  // The comparison with the previous release (an rsync dry run) and the scan of what
  // clients mount (a find) are processes of their own: once the inputs are checked, both
  // start and run beside the lock, the skeleton and the fingerprint. The scan only reads
  // the source (and writes its state only after a clean scan).
  // The comparison starts from a guess of the previous release made before the lock: it
  // counts only if the guess still holds under the lock (no other build ran meanwhile),
  // and only if the fingerprint matches. The scan's lines are printed once it is done.
  const compareWith = (p: PreviousRelease): Promise<string[]> | undefined =>
    p.root
      ? differences({
          source,
          dest: p.root,
          excludes,
          managed: p.meta?.managed ?? [],
          toolFiles: layout === 'in-place' ? TOOL_FILES : [],
        })
      : undefined;
  const guessed = previousRelease(target, layout, checked.marker).then((previous) => {
    const comparison = compareWith(previous);
    comparison?.catch(() => undefined); // awaited below, or replaced
    return { previous, comparison };
  });
  guessed.catch(() => undefined); // awaited below
  const mountedLog = deferredReporter();
  const mountedScan = scanMountedTrees({ ...options, source }, mountedLog.reporter);
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
  const lockWait = { happened: false };
  const skeletonOf = () => buildSkeleton({ source, varDirs: options.varDirs });
  // It starts once the comparison is on its way: its many small reads would otherwise
  // queue the comparison's few lookups behind them in libuv's thread pool.
  const early = guessed.then(skeletonOf, skeletonOf);
  early.catch(() => undefined); // awaited below
  const buildLock = await holdLocks([await lockFile(target)], () => {
    lockWait.happened = true;
    reporter.info(`Another build of ${target} is running; waiting for it to finish`);
  });
  let staging: string | undefined;
  try {
    const marker = await readMarker(target);
    const previous = await previousRelease(target, layout, marker);
    const { id: previousId, meta: previousMeta, root: previousRoot, current } = previous;
    const guess = await guessed.catch(() => undefined);
    const comparison =
      guess && !lockWait.happened && samePrevious(guess.previous, previous)
        ? guess.comparison?.catch(() => compareWith(previous)) // a failed guess runs again
        : compareWith(previous);
    comparison?.catch(() => undefined); // awaited below
    if (layout === 'versioned') await removePartials(target, reporter);

    // ---- compare, then copy holding the dpkg lock of the source ----
    const dpkgFiles: string[] = [];
    for (const name of ['lock-frontend', 'lock']) {
      const file = path.join(source, 'var/lib/dpkg', name);
      if ((await lstatOrUndefined(file))?.isFile()) dpkgFiles.push(file);
    }
    // Taken only to copy: a no-change rebuild never blocks apt on the master. The
    // compare before it only reads; if apt is half-way, it sees a difference and the
    // copy then waits for apt to finish.
    let dpkgLock: HeldLock | undefined;
    let skeleton;
    let mounted: SecretHit[];
    let fingerprint: string;
    let sshKeyDir: string | undefined;
    let id: string;
    let root: string;
    try {
      skeleton = lockWait.happened ? await skeletonOf() : await early;
      if (
        options.clientSshKeys &&
        !options.hostKeysAtBoot &&
        (await lstatOrUndefined(path.join(source, 'etc/ssh')))?.isDirectory()
      ) {
        sshKeyDir = await clientKeys(options.stateDir, reporter);
      }
      fingerprint = sha256(
        JSON.stringify({
          format: FORMAT,
          source,
          excludes,
          copyUsr: options.copyUsr,
          mask: options.maskServices,
          enable: options.enableServices,
          template: hashEntries(template),
          fstab,
          skeleton: skeleton.sha256,
          keys: sshKeyDir
            ? await hashFiles(
                sshKeyDir,
                CLIENT_KEY_PATHS.map((p) => path.basename(p)),
              )
            : null,
          allow: options.secretAllow,
          accounts: [...accounts],
          bootKeys: options.hostKeysAtBoot,
        }),
      );

      if (previousRoot && previousMeta?.fingerprint === fingerprint) {
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
          assertNoSecrets(await mountedHits());
          // Unchanged: nothing new. With publish, the release it equals becomes current
          // (a staged one that the last run did not get to promote).
          const promote = layout === 'versioned' && options.publish && previousMeta.id !== current;
          if (promote) {
            await makeCurrent(target, previousMeta.id, current, whoRan(process.env));
            reporter.info(`${path.join(target, CURRENT)} now points at ${previousMeta.id}`);
          }
          const published = layout === 'in-place' || previousMeta.id === current || promote;
          return stepReport({
            root: previousRoot,
            meta: previousMeta,
            changed: false,
            note: ` (unchanged: nothing new${promote ? '; made current' : ''})`,
            rows: layout === 'versioned' ? await retain(target, options, reporter) : [],
            published,
            started,
          });
        }
      } else if (previousMeta) {
        reporter.info(
          `The build's inputs (template, options, /var skeleton or keys) changed since ${previousMeta.id}`,
        );
      }
      // Not needed, but not left running while the copy writes where it reads.
      await comparison?.catch(() => undefined);
      mounted = await mountedHits();

      if (dpkgFiles.length > 0) {
        dpkgLock = await holdLocks(dpkgFiles, (file) => {
          reporter.info(
            `Waiting for the dpkg lock of the source (${file}): apt or dpkg is running`,
          );
        });
      } else {
        reporter.info(`The source has no dpkg lock files; copying without holding them`);
      }
      id = newReleaseId(new Date(), await listReleases(target));
      root = layout === 'versioned' ? path.join(target, RELEASES, `${PARTIAL}${id}`) : target;
      if (layout === 'versioned') {
        await mkdir(path.join(target, RELEASES), { recursive: true, mode: 0o755 });
        staging = root;
      }
      await reporter.group(`Copy ${source} with rsync`, async () => {
        const stats = await copy(
          {
            source,
            dest: root,
            excludes,
            linkDest: layout === 'versioned' ? previousRoot : undefined,
            deleteExcluded: layout === 'in-place',
            toolFiles: layout === 'in-place' ? TOOL_FILES : [],
          },
          reporter,
        );
        reporter.info(
          `Copied ${stats.transferred} file(s), ${humanBytes(stats.transferredBytes)}${previousRoot && layout === 'versioned' ? `; the rest are hard links to ${previousId ?? ''}` : ''}`,
        );
      });
    } finally {
      await dpkgLock?.release();
    }

    const tree = new ClientTree(root, layout === 'versioned' ? previousRoot : undefined);
    const keys = await reporter.group("Scrub the master's identity", () =>
      scrub(tree, { clientSshKeys: options.clientSshKeys, keyDir: sshKeyDir }, reporter),
    );
    await writeAccounts(tree, accounts);
    if (options.hostKeysAtBoot) await installBootHostKeys(tree);
    await reporter.group('Overlay the template', async () => {
      const n = await applyTemplate(tree, template);
      await tree.writeFile(RELEASE_FILE, `${id}\n`, { mode: 0o644, mtime: new Date(0) });
      await tree.writeFile(ISSUE_FILE, `diskless release ${id}\n\n`, {
        mode: 0o644,
        mtime: new Date(0),
      });
      reporter.info(
        options.template
          ? `Laid ${n} file(s) of ${options.template} over the root`
          : 'No template given',
      );
      if (fstab !== undefined) {
        await tree.writeFile(FSTAB, fstab, { mode: 0o644, mtime: new Date(0) });
        reporter.info('Wrote a generated /etc/fstab (tmpfs /var and /tmp, NFS /usr)');
      }
    });
    await reporter.group('Prepare the tmpfs /var', async () => {
      await tree.directory('var', 0o755); // the copy left it empty
      await tree.writeFile(SKELETON, skeleton.tar, { mode: 0o644, mtime: new Date(0) });
      await tree.writeFile(`etc/systemd/system/${POPULATE_UNIT}`, POPULATE_UNIT_TEXT, {
        mode: 0o644,
        mtime: new Date(0),
      });
      reporter.info(
        `/var is empty; /${SKELETON} holds ${skeleton.entries.length} directories and links for it`,
      );
    });
    const services = await reporter.group('Mask server-only services', () =>
      configureServices(
        tree,
        {
          source,
          copyUsr: options.copyUsr,
          mask: options.maskServices,
          enable: [
            POPULATE_UNIT,
            ...(options.hostKeysAtBoot ? [BOOT_KEYS_UNIT] : []),
            ...options.enableServices,
          ],
        },
        reporter,
      ),
    );
    const scan = await reporter.group('Scan for secrets', async () => {
      const fullScan =
        !previousMeta || layout === 'in-place' || previousMeta.fingerprint !== fingerprint;
      const result = await scanSecrets({
        root,
        previous: fullScan ? undefined : previousRoot,
        allow: options.secretAllow,
        accepted: keys.sshKeys ? CLIENT_KEY_PATHS : [],
        skip: layout === 'in-place' ? TOOL_FILES : [],
      });
      // A file a Debian package shipped unchanged is public (library self-test keys).
      const hits = await withoutShippedFiles(result.hits, source, (h) => ({
        file: path.join(root, h.path),
        rel: h.path.slice(1),
      }));
      reporter.info(`Read ${result.read} of ${result.files} file(s); ${hits.length} hit(s)`);
      assertNoSecrets([...mounted, ...hits]);
      return result;
    });

    const meta: ReleaseMeta = {
      id,
      created: new Date().toISOString(),
      previous: previousMeta?.id,
      fingerprint,
      managed: [...tree.managed].sort(),
      files: scan.files,
      bytes: scan.bytes,
    };
    let finalRoot = root;
    await reporter.group('Publish', async () => {
      if (layout === 'versioned') {
        finalRoot = path.join(target, RELEASES, id);
        await writeMeta(target, meta);
        await rename(root, finalRoot);
        staging = undefined;
        if (!options.publish) {
          reporter.info(
            `Staged ${RELEASES}/${id}; ${path.join(target, CURRENT)} still points at ${current ?? 'nothing'} (promote the release once it passed its boot test)`,
          );
          return;
        }
        try {
          await makeCurrent(target, id, current, whoRan(process.env));
        } catch (error) {
          // Not live: the release must not linger as if it had been published.
          await removeRelease(target, id);
          throw error;
        }
        reporter.info(`Published ${RELEASES}/${id}; ${path.join(target, CURRENT)} points at it`);
      } else {
        await writeMarker(target, {
          ...(marker ?? { tool: 'diskless-node', layout, created: meta.created }),
          last: meta,
        });
        reporter.info(`Synced ${target} in place`);
      }
    });
    return stepReport({
      root: finalRoot,
      meta,
      changed: true,
      note: previousMeta ? ` (previous ${previousMeta.id})` : '',
      rows: [
        ['Masked', services.masked.join(', ') || 'none'],
        ['Enabled', services.enabled.join(', ') || 'none'],
        [
          'Current',
          layout === 'in-place' || options.publish
            ? 'this release'
            : `${current ?? 'none'} (staged, not published)`,
        ],
        ...(layout === 'versioned' ? await retain(target, options, reporter) : []),
      ],
      published: layout === 'in-place' || options.publish,
      started,
    });
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
    await buildLock.release();
  }
}
