/**
 * What the fleet runs after a rollout, for people (one summary row per server) and for
 * retention (a ledger entry: the release of the new drive, and `also` every other release
 * a server of the family still runs, boots next, or that the previous drive boots).
 */
import { artifactsInUse, type ArtifactView, type ServerView } from '../fleet/provider.js';
import { isReleaseId } from '../releases/layout.js';
import type { LedgerEntry } from '../releases/ledger.js';

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
