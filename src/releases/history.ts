/**
 * The promotion history of a target: every time `current` moved, when, from which release
 * to which, and who or what moved it. `previous` (the rollback) and retention's "stopped
 * being current" both read it. It lives in `<target>/promotions.json`, one JSON array,
 * replaced atomically under the target's build lock, so jq can read it too.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import type { Env } from '../env.js';

export const HISTORY = 'promotions.json';

export interface Promotion {
  /** ISO 8601 time of the switch. */
  time: string;
  /** The release that was current before (absent on the first promotion). */
  from?: string;
  to: string;
  /** Who or what moved it: the workflow run, or user@host for the command line. */
  by: string;
  /** A step to an older release than the one it replaced. */
  rollback?: true;
}

export async function readHistory(target: string): Promise<Promotion[]> {
  const file = path.join(target, HISTORY);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (Array.isArray(parsed)) return parsed as Promotion[];
  } catch {
    // fall through to the error below
  }
  throw new DisklessError(
    `${file}: expected the promotion history (a JSON array); fix or remove the file`,
  );
}

export async function appendPromotion(target: string, entry: Promotion): Promise<void> {
  const history = await readHistory(target);
  await writeFileAtomic(
    path.join(target, HISTORY),
    `${JSON.stringify([...history, entry], null, 2)}\n`,
  );
}

/**
 * The release that was current before `current`: the `from` of the promotion that made it
 * current (undefined when history does not know, e.g. the first release).
 */
export function previousOf(history: readonly Promotion[], current: string): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const p = history[i];
    if (p?.to === current) return p.from;
  }
  return undefined;
}

/** Releases that have been current at some time, by the history. */
export function everPromoted(history: readonly Promotion[]): Set<string> {
  return new Set(history.flatMap((p) => (p.from ? [p.from, p.to] : [p.to])));
}

/** When each release last stopped being current (ms since the epoch). */
export function leftCurrentAt(history: readonly Promotion[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of history) if (p.from && p.from !== p.to) out.set(p.from, Date.parse(p.time));
  return out;
}

/** Names the run that promotes, for the history: the workflow run, else user@host. */
export function whoRan(env: Env): string {
  if (env.GITHUB_RUN_ID) {
    const run = `${env.GITHUB_REPOSITORY ?? ''} ${env.GITHUB_WORKFLOW ?? 'workflow'} run ${env.GITHUB_RUN_ID}`;
    return `${run.trim()}${env.GITHUB_ACTOR ? ` by ${env.GITHUB_ACTOR}` : ''}`;
  }
  return `${env.SUDO_USER ?? env.USER ?? 'unknown'}@${os.hostname()} (diskless command line)`;
}
