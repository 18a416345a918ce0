/**
 * What a rollout did (its result) and the report made from it; what the fleet runs after
 * it, for people (one summary row per server) and for retention (a ledger entry: the
 * release of the new drive, and `also` every other release a server of the family still
 * runs, boots next, or that the previous drive boots).
 */
import { describeCheck, type HealthCheck } from '../fleet/health.js';
import {
  artifactsInUse,
  type ArtifactView,
  type Provider,
  type ServerView,
} from '../fleet/provider.js';
import { isReleaseId } from '../releases/layout.js';
import type { LedgerEntry } from '../releases/ledger.js';
import type { RolloutReport } from './options.js';

/** What a rollout did: the step's result, which reportRollout turns into its report. */
export interface RolloutResult {
  kind: Provider['kind'];
  /** The drive or ISO rolled out. */
  target: ArtifactView;
  /** The artifact most of the servers ran before (the one to roll back to). */
  previous: string | undefined;
  /** Every artifact of the cloud afterwards, by id. */
  artifacts: Map<string, ArtifactView>;
  /** The chosen servers' names, in the plan's order. */
  planned: string[];
  /** The servers repointed and restarted, by name, as they finished. */
  updated: string[];
  restarted: string[];
  /** The servers that failed, space-separated. */
  failedServer: string | undefined;
  /** Why the rollout stopped, when it failed. */
  failure: string | undefined;
  /** The ledger entry made (none on a dry run). */
  ledger: LedgerEntry | undefined;
  /** Per chosen server: its name and what it runs. */
  fleet: [string, string][];
  dryRun: boolean;
  restart: 'rolling' | 'none';
  batchSize: number;
  check: HealthCheck;
}

/** An artifact id, short: a Proxmox volume's file name, or a drive UUID's first 8. */
export const shortId = (id: string | undefined): string =>
  id ? (id.includes(':') ? id.replace(/^.*\//, '') : id.slice(0, 8)) : 'nothing';

/** What an artifact is called on this cloud. */
export const artifactNoun = (kind: Provider['kind']): string =>
  kind === 'proxmox' ? 'ISO' : 'drive';

/** The artifact as people read it: name, release, short id. */
export function shownIn(artifacts: Map<string, ArtifactView>, id: string | undefined): string {
  if (!id) return 'nothing';
  const a = artifacts.get(id);
  return a ? `${a.name} (${a.release ?? 'release unknown'}, ${shortId(id)})` : id;
}

/** `names` in the plan's order (servers of one batch finish in any order). */
export function inPlanOrder(planned: readonly string[], names: readonly string[]): string[] {
  return planned.filter((n) => names.includes(n));
}

/** The step's outputs and summary. */
export function reportRollout(r: RolloutResult): RolloutReport {
  const shown = (id: string | undefined) => shownIn(r.artifacts, id);
  const inOrder = (names: string[]) => inPlanOrder(r.planned, names);
  return {
    outputs: {
      'servers-updated': inOrder(r.updated).join(' '),
      'servers-restarted': inOrder(r.restarted).join(' '),
      'previous-drive': r.previous ?? '',
      'failed-server': r.failedServer ?? '',
      release: r.target.release ?? '',
      ledger: r.ledger ? JSON.stringify(r.ledger) : '',
      fleet: JSON.stringify(Object.fromEntries(r.fleet)),
      'dry-run': r.dryRun,
    },
    summary: [
      [r.kind === 'proxmox' ? 'ISO' : 'Drive', shown(r.target.id)],
      [
        `Previous ${artifactNoun(r.kind)}`,
        r.previous ? `${shown(r.previous)} (roll back: rollout to it)` : 'none',
      ],
      [
        'Restart',
        r.restart === 'rolling'
          ? `rolling, batches of ${r.batchSize}, health ${describeCheck(r.check)}`
          : 'none: servers take the new drive at their next boot',
      ],
      [
        'Result',
        r.failure ??
          (r.dryRun
            ? 'dry run: nothing changed'
            : `${r.updated.length} repointed, ${r.restarted.length} restarted`),
      ],
      ...r.fleet.map(([name, runs]): [string, string] => [`Server ${name}`, runs]),
    ],
  };
}

function label(a: ArtifactView | undefined, id: string): string {
  // An ISO volume id (Proxmox) is its name; a drive UUID is shown short beside the name.
  const what = id.includes(':')
    ? `ISO ${a?.name ?? id}`
    : `drive ${a?.name ?? '?'}, ${id.slice(0, 8)}`;
  return `${a?.release ?? 'release unknown'} (${what})`;
}

/** One row per server: the release it runs and, when it differs, the one it boots next. */
export function fleetRows(
  servers: readonly ServerView[],
  artifacts: Map<string, ArtifactView>,
): [string, string][] {
  return servers.map((s) => {
    const cds = Object.values(s.cds);
    const families = new Set(cds.map((id) => artifacts.get(id)?.family ?? id));
    const runs = [...artifacts.values()].filter(
      (a) => a.claimedBy.includes(s.id) && (cds.includes(a.id) || families.has(a.family)),
    );
    const next = cds.map((id) => label(artifacts.get(id), id)).join(', ') || 'no CD';
    if (!s.running) return [s.name || s.id, `${s.status}; boots ${next} at its next start`];
    const now = runs.map((a) => label(a, a.id)).join(', ');
    if (now === '' || now === next) return [s.name || s.id, `runs ${now || next}`];
    return [s.name || s.id, `runs ${now} until its next boot, then ${next}`];
  });
}

/** The ledger entry for the upload target `name`; undefined when the drive names no release. */
export function ledgerEntry(o: {
  name: string;
  target: ArtifactView;
  previous: ArtifactView | undefined;
  servers: readonly ServerView[];
  artifacts: readonly ArtifactView[];
  now?: Date;
}): LedgerEntry | undefined {
  const release = o.target.release;
  if (release === undefined || !isReleaseId(release)) return undefined;
  const why = new Map<string, string[]>();
  const add = (a: ArtifactView | undefined, reason: string) => {
    if (!a?.release || !isReleaseId(a.release) || a.release === release) return;
    why.set(a.release, [...(why.get(a.release) ?? []), reason]);
  };
  const byId = new Map(o.artifacts.map((a) => [a.id, a]));
  for (const [id, use] of artifactsInUse(o.servers, o.artifacts)) {
    const a = byId.get(id);
    if (a?.family !== o.target.family) continue;
    if (use.claimedBy.length) add(a, `drive ${id.slice(0, 8)} runs on ${use.claimedBy.join(', ')}`);
    if (use.referencedBy.length)
      add(a, `drive ${id.slice(0, 8)} boots ${use.referencedBy.join(', ')} next`);
  }
  add(o.previous, `previous drive ${o.previous?.id.slice(0, 8) ?? ''} (rollback)`);
  return {
    target: o.name,
    release,
    sha256: o.target.sha256 ?? '',
    drive: o.target.id,
    time: (o.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z'),
    also: [...why].map(([r, reasons]) => ({ release: r, why: reasons.join('; ') })),
  };
}
