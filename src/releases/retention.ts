/**
 * Retention that never deletes a root a client may run. A release is removed only when
 * all of these hold:
 *   - it is not among the `keep` newest releases;
 *   - it stopped being current more than `keepDays` ago (one that was never current, or
 *     left current before the history began, counts from when the next release was made);
 *   - no in-use signal names it (in-use.ts), and every signal could be read.
 * The plan is pure; `applyRetention` removes what it says, each release with its ISO.
 */
import type { Reporter } from '../report.js';
import type { Promotion } from './history.js';
import { leftCurrentAt } from './history.js';
import type { InUse } from './in-use.js';
import { readMeta, removeRelease, type ReleaseMeta } from './layout.js';

const DAY = 24 * 3600 * 1000;

export interface RetentionPlan {
  remove: string[];
  /** Release id -> why it stays. */
  keep: Map<string, string[]>;
}

export function planRetention(o: {
  /** Release ids, oldest first. */
  ids: readonly string[];
  metas: ReadonlyMap<string, Pick<ReleaseMeta, 'created'> | undefined>;
  history: readonly Promotion[];
  inUse: InUse;
  keep: number;
  keepDays: number;
  now: number;
}): RetentionPlan {
  const left = leftCurrentAt(o.history);
  const keep = new Map<string, string[]>();
  const remove: string[] = [];
  const newest = new Set(o.ids.slice(-o.keep));
  o.ids.forEach((id, i) => {
    const why = [...(o.inUse.reasons.get(id) ?? [])];
    if (newest.has(id)) why.push(`among the ${o.keep} newest`);
    // When it stopped being current; never current: when the next release superseded it.
    const next = o.ids[i + 1];
    const nextCreated = next !== undefined ? o.metas.get(next)?.created : undefined;
    const at = left.get(id) ?? Date.parse(nextCreated ?? o.metas.get(id)?.created ?? '');
    if (Number.isNaN(at)) why.push('its age is unknown');
    else if (o.now - at < o.keepDays * DAY) {
      why.push(`current or new within ${o.keepDays} day(s)`);
    }
    if (o.inUse.all) why.push(o.inUse.all);
    if (o.inUse.problems.length > 0) why.push('a signal of what is in use could not be read');
    if (why.length > 0) keep.set(id, why);
    else remove.push(id);
  });
  return { remove, keep };
}

/** Reads the metadata the plan needs. */
export async function releaseMetas(
  target: string,
  ids: readonly string[],
): Promise<Map<string, ReleaseMeta | undefined>> {
  const out = new Map<string, ReleaseMeta | undefined>();
  for (const id of ids) out.set(id, await readMeta(target, id));
  return out;
}

/**
 * Removes what the plan says. A failure is a warning (the build it follows is done and
 * may be live): the release stays for the next run, never half-reported as removed.
 */
export async function applyRetention(
  target: string,
  plan: RetentionPlan,
  reporter: Reporter,
): Promise<string[]> {
  const removed: string[] = [];
  for (const id of plan.remove) {
    try {
      await removeRelease(target, id);
      removed.push(id);
    } catch (error) {
      reporter.warning(`Could not remove release ${id}: ${(error as Error).message}`);
    }
  }
  if (removed.length > 0) {
    reporter.info(`Removed ${removed.length} old release(s): ${removed.join(', ')}`);
  }
  return removed;
}

/** Summary rows: every release kept and why, and every release removed. */
export function retentionRows(plan: RetentionPlan, removed: readonly string[]): [string, string][] {
  const kept = [...plan.keep].map(([id, why]) => `${id} (${why.join('; ')})`);
  return [
    ['Releases kept', kept.join(', ') || 'none'],
    ['Releases removed', removed.join(', ') || 'none'],
  ];
}
