/**
 * promote: makes a complete release current, atomically, and records it. `previous` is
 * the release that was current before the current one (by the history), so a rollback is
 * `promote previous`, and a second one undoes the first.
 *
 *   check    the target is a versioned target of this tool; the id names a complete release
 *   lock     the target's build lock: never while a build publishes or prunes
 *   resolve  `previous` through the history
 *   switch   `current` replaced atomically; the history records time, from, to and who
 */
import path from 'node:path';
import type { Env } from '../env.js';
import { DisklessError, inputError } from '../errors.js';
import type { Reporter } from '../report.js';
import { lockFile, readMarker } from '../rootfs/guard.js';
import { holdLocks } from '../rootfs/lock.js';
import { appendPromotion, previousOf, readHistory, whoRan } from './history.js';
import {
  compareIds,
  CURRENT,
  currentId,
  isComplete,
  listReleases,
  RELEASES,
  switchCurrent,
} from './layout.js';
import type { PromoteOptions, PromoteReport } from './options.js';

/**
 * Points `current` at `id` and records the promotion; on a failure to record, `current`
 * goes back to what it was, so the history never misses a switch. The caller holds the
 * target's build lock.
 */
export async function makeCurrent(
  target: string,
  id: string,
  from: string | undefined,
  by: string,
): Promise<void> {
  await switchCurrent(target, id);
  try {
    await appendPromotion(target, {
      time: new Date().toISOString(),
      ...(from ? { from } : {}),
      to: id,
      by,
      ...(from && compareIds(id, from) < 0 ? { rollback: true as const } : {}),
    });
  } catch (error) {
    if (from) await switchCurrent(target, from);
    throw error;
  }
}

async function checkTarget(target: string): Promise<void> {
  const marker = await readMarker(target);
  if (marker?.layout !== 'versioned') {
    throw new DisklessError(
      `${target}: ${marker ? 'an in-place target has no releases' : 'not a target of build-rootfs (no .diskless-target marker)'}; expected the target of a versioned build-rootfs`,
    );
  }
}

/** The id `release` names: itself, or the previous one by the history. */
async function resolve(
  target: string,
  release: string,
  current: string | undefined,
): Promise<string> {
  let id = release;
  if (release === 'previous') {
    const history = await readHistory(target);
    const previous = current ? previousOf(history, current) : undefined;
    if (!previous) {
      throw new DisklessError(
        `Input "release": got "previous"; expected a release before the current one (${current ?? 'none'}), and the promotion history of ${target} names none`,
      );
    }
    id = previous;
  }
  if (!(await isComplete(target, id))) {
    const known = (await listReleases(target)).slice(-5).reverse();
    throw inputError(
      'release',
      id,
      `a complete release under ${path.join(target, RELEASES)} (newest: ${known.join(', ') || 'none'})`,
    );
  }
  return id;
}

/** What promote did: the step's result, which reportPromote turns into its report. */
export interface PromoteResult {
  target: string;
  /** The release that is (or, in a dry run, would be) current. */
  release: string;
  /** The release current before, if any. */
  previous: string | undefined;
  /** `current` was switched. */
  changed: boolean;
  /** What happened, in a line. */
  what: string;
  /** Who ran it, as the history records it. */
  by: string;
}

/** Makes the release current; `env` names who ran it in the history. */
export async function promote(
  options: PromoteOptions,
  reporter: Reporter,
  env: Env,
): Promise<PromoteResult> {
  const target = path.resolve(options.target);
  await checkTarget(target);
  const lock = await holdLocks([await lockFile(target)], () => {
    reporter.info(`A build of ${target} is running; waiting for it to finish`);
  });
  try {
    const current = await currentId(target);
    const id = await resolve(target, options.release, current);
    const by = whoRan(env);
    let what: string;
    if (id === current) {
      what = `${id} is already current; nothing changed`;
    } else if (options.dryRun) {
      what = `dry run: would make ${id} current (now ${current ?? 'none'})`;
    } else {
      await makeCurrent(target, id, current, by);
      what = `${path.join(target, CURRENT)} now points at ${RELEASES}/${id} (was ${current ?? 'none'})`;
    }
    reporter.info(what);
    const changed = id !== current && !options.dryRun;
    return { target, release: id, previous: current, changed, what, by };
  } finally {
    await lock.release();
  }
}

/** The step's outputs and summary. */
export function reportPromote(r: PromoteResult): PromoteReport {
  return {
    outputs: { release: r.release, previous: r.previous ?? '', changed: r.changed },
    summary: [
      ['Target', r.target],
      ['Release', r.release],
      ['Previous', r.previous ?? 'none'],
      ['Result', r.what],
      ...(r.changed ? ([['By', r.by]] as [string, string][]) : []),
    ],
  };
}
