/**
 * The two layouts of a target, as the build sees them: where the previous release is,
 * where the copy goes and how the result becomes what clients mount.
 *
 *   versioned  each build is an immutable releases/<id> (hard links to the previous one for
 *              what did not change); `current` switches atomically; retention removes what
 *              nothing uses any more
 *   in-place   the target itself is synced over; the marker file remembers the last build
 *
 * build.ts never branches on the layout: it asks the publisher.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Reporter } from '../report.js';
import type { Env } from '../env.js';
import { everPromoted, readHistory, whoRan } from '../releases/history.js';
import { releasesInUse } from '../releases/in-use.js';
import {
  compareIds,
  CURRENT,
  currentId,
  listReleases,
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
import { TOOL_FILES, writeMarker, type Layout, type Marker } from './guard.js';
import type { BuildRootfsOptions } from './options.js';

/**
 * The release a build starts from: in place, what the marker says the last build made
 * of the target itself; versioned, the newest staged release (newer than current and never
 * promoted), else the current one, else the newest (its root even when its metadata is
 * lost). `current` is what `current` points at.
 */
export interface PreviousRelease {
  id?: string;
  meta?: ReleaseMeta;
  root?: string;
  current?: string;
}

/** Whether two looks at the previous release saw the same one (a comparison with it holds). */
export function samePrevious(a: PreviousRelease, b: PreviousRelease): boolean {
  return JSON.stringify([a.id, a.root, a.meta]) === JSON.stringify([b.id, b.root, b.meta]);
}

/** What a no-change build did: whether the release it equals is live, and the summary rows. */
export interface Unchanged {
  /** The release it equals was made current now. */
  promoted: boolean;
  published: boolean;
  rows: [string, string][];
}

export interface Publisher {
  readonly layout: Layout;
  /** The path clients mount as their root (the template's {{NFS_ROOT}}). */
  readonly nfsRoot: string;
  /** The tool's own files inside the client root: never compared, copied over or scanned. */
  readonly toolFiles: readonly string[];
  /**
   * The previous release stays as it was while the new one is built beside it: the copy
   * hard-links to it, the tree knows what is shared and the scan reads only what changed.
   */
  readonly incremental: boolean;
  /** A warning to show once the inputs are checked. */
  readonly warning?: string;
  previous(marker: Marker | undefined): Promise<PreviousRelease>;
  /** Under the build lock, before the comparison is awaited: leftovers of a failed build go. */
  clean(): Promise<void>;
  /** Nothing changed: the release `previous` equals stays (and becomes current with publish). */
  unchanged(previous: PreviousRelease & { meta: ReleaseMeta }): Promise<Unchanged>;
  /** Where the copy of release `id` goes. */
  stage(id: string): Promise<string>;
  /**
   * Makes the built release what it is meant to be (staged or current); returns its root and
   * whether clients see it now.
   */
  publish(
    meta: ReleaseMeta,
    root: string,
    previous: PreviousRelease,
    marker: Marker | undefined,
  ): Promise<{ root: string; live: boolean }>;
  /** Summary rows of retention after a build. */
  retain(): Promise<[string, string][]>;
  /** In the build's finally: a copy that was never published goes. */
  discard(): Promise<void>;
}

/** The layout's publisher; `env` names who ran the build in the promotion history. */
export function publisherFor(
  target: string,
  options: BuildRootfsOptions,
  reporter: Reporter,
  env: Env,
): Publisher {
  return options.layout === 'versioned'
    ? new VersionedPublisher(target, options, reporter, whoRan(env))
    : new InPlacePublisher(target, reporter);
}

class VersionedPublisher implements Publisher {
  readonly layout = 'versioned';
  readonly nfsRoot: string;
  readonly toolFiles = [];
  readonly incremental = true;
  readonly warning = undefined;
  /** The copy while it is not a release yet: removed if the build fails. */
  private staging: string | undefined;

  constructor(
    private readonly target: string,
    private readonly options: BuildRootfsOptions,
    private readonly reporter: Reporter,
    /** Who runs the build, as the promotion history records it. */
    private readonly by: string,
  ) {
    this.nfsRoot = path.join(target, CURRENT);
  }

  async previous(): Promise<PreviousRelease> {
    const target = this.target;
    // Three independent reads at once: this is on the way to the comparison's start.
    const [current, ids, history] = await Promise.all([
      currentId(target),
      listReleases(target),
      readHistory(target),
    ]);
    const promoted = everPromoted(history);
    const staged = ids.filter(
      (id) => !promoted.has(id) && (current === undefined || compareIds(id, current) > 0),
    );
    const id = staged.at(-1) ?? current ?? ids.at(-1);
    if (!id) return {};
    return { id, meta: await readMeta(target, id), root: path.join(target, RELEASES, id), current };
  }

  async clean(): Promise<void> {
    await removePartials(this.target, this.reporter);
  }

  async unchanged({ meta, current }: PreviousRelease & { meta: ReleaseMeta }): Promise<Unchanged> {
    // With publish, the release it equals becomes current (a staged one that the last run
    // did not get to promote).
    const promoted = this.options.publish && meta.id !== current;
    if (promoted) {
      await makeCurrent(this.target, meta.id, current, this.by);
      this.reporter.info(`${path.join(this.target, CURRENT)} now points at ${meta.id}`);
    }
    return { promoted, published: meta.id === current || promoted, rows: await this.retain() };
  }

  async stage(id: string): Promise<string> {
    const root = path.join(this.target, RELEASES, `${PARTIAL}${id}`);
    await mkdir(path.join(this.target, RELEASES), { recursive: true, mode: 0o755 });
    this.staging = root;
    return root;
  }

  async publish(
    meta: ReleaseMeta,
    root: string,
    { current }: PreviousRelease,
  ): Promise<{ root: string; live: boolean }> {
    const { target, reporter } = this;
    const id = meta.id;
    const finalRoot = path.join(target, RELEASES, id);
    await writeMeta(target, meta);
    await rename(root, finalRoot);
    this.staging = undefined;
    if (!this.options.publish) {
      reporter.info(
        `Staged ${RELEASES}/${id}; ${path.join(target, CURRENT)} still points at ${current ?? 'nothing'} (promote the release once it passed its boot test)`,
      );
      return { root: finalRoot, live: false };
    }
    try {
      await makeCurrent(target, id, current, this.by);
    } catch (error) {
      // Not live: the release must not linger as if it had been published.
      await removeRelease(target, id);
      throw error;
    }
    reporter.info(`Published ${RELEASES}/${id}; ${path.join(target, CURRENT)} points at it`);
    return { root: finalRoot, live: true };
  }

  /**
   * Retention after a build: what nothing uses any more goes. Never fails the build (its
   * release is complete and may be live): a failure is a warning and everything stays.
   */
  async retain(): Promise<[string, string][]> {
    const { target, options, reporter } = this;
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

  async discard(): Promise<void> {
    if (this.staging) await rm(this.staging, { recursive: true, force: true });
  }
}

class InPlacePublisher implements Publisher {
  readonly layout = 'in-place';
  readonly toolFiles = TOOL_FILES;
  readonly incremental = false;
  readonly warning: string;

  constructor(
    private readonly target: string,
    private readonly reporter: Reporter,
  ) {
    this.warning = `layout is in-place: ${target} is synced in place, and running clients see every change as it happens; the versioned layout publishes immutable releases instead`;
  }

  get nfsRoot(): string {
    return this.target;
  }

  previous(marker: Marker | undefined): Promise<PreviousRelease> {
    const meta = marker?.last as ReleaseMeta | undefined;
    return Promise.resolve({ meta, root: meta ? this.target : undefined });
  }

  async clean(): Promise<void> {}

  unchanged(): Promise<Unchanged> {
    return Promise.resolve({ promoted: false, published: true, rows: [] });
  }

  stage(): Promise<string> {
    return Promise.resolve(this.target);
  }

  async publish(
    meta: ReleaseMeta,
    root: string,
    _previous: PreviousRelease,
    marker: Marker | undefined,
  ): Promise<{ root: string; live: boolean }> {
    await writeMarker(this.target, {
      ...(marker ?? { tool: 'diskless-node', layout: this.layout, created: meta.created }),
      last: meta,
    });
    this.reporter.info(`Synced ${this.target} in place`);
    return { root, live: true };
  }

  retain(): Promise<[string, string][]> {
    return Promise.resolve([]);
  }

  async discard(): Promise<void> {}
}
