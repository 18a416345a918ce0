/**
 * Which servers a rollout moves, on which CD device, from which drive: servers named by
 * name, id (a UUID, a Proxmox VMID), `tag:<tag>` or `pool:<pool>` (each entry must match), or by default every server with a
 * CD device holding a drive of the new drive's family. Decided from one listing of
 * servers and drives, before anything changes.
 */
import { DisklessError, inputError } from '../errors.js';
import { UUID_PATTERN } from '../inputs/fields.js';
import type { ArtifactView, ServerView } from '../fleet/provider.js';

export interface Move {
  server: ServerView;
  device: string;
  /** What the server runs (its claim in the family) or, stopped, boots now; undefined: nothing. */
  from: string | undefined;
  /** The CD device must be pointed at the new drive (false: it names it already). */
  repoint: boolean;
  /** Reset it: running, and not running the new drive yet. */
  restart: boolean;
}

/** The servers the `servers` input names, in listing order, each once. */
export function chooseServers(
  entries: readonly string[],
  servers: readonly ServerView[],
  inFamily: (artifact: string) => boolean,
  family: string,
  noun = 'drive',
): ServerView[] {
  if (entries.length === 0) {
    const chosen = servers.filter((s) => Object.values(s.cds).some(inFamily));
    if (chosen.length === 0) {
      throw new DisklessError(
        `No server boots a${noun === 'ISO' ? 'n' : ''} ${noun} of the family "${family}" (no CD device holds one); name the servers with the "servers" input`,
      );
    }
    return chosen;
  }
  const picked = new Set<string>();
  for (const entry of entries) {
    const tag = /^tag:(.+)$/.exec(entry)?.[1]?.trim();
    const pool = /^pool:(.+)$/.exec(entry)?.[1]?.trim();
    const byId = UUID_PATTERN.test(entry) || /^\d+$/.test(entry);
    const match = servers.filter((s) =>
      tag !== undefined
        ? s.tags.includes(tag)
        : pool !== undefined
          ? s.pool === pool
          : byId
            ? s.id.toLowerCase() === entry.toLowerCase()
            : s.name === entry,
    );
    if (match.length === 0) {
      throw inputError(
        'servers',
        entry,
        `a server name, id, tag:<tag> or pool:<pool>, and no server of the account matches it (servers: ${servers.map((s) => s.name || s.id).join(', ') || 'none'})`,
      );
    }
    for (const s of match) picked.add(s.id);
  }
  return servers.filter((s) => picked.has(s.id));
}

/** The move of one server: its device, the drive it leaves, what has to happen. */
export function planMove(
  server: ServerView,
  target: ArtifactView,
  o: {
    device: string | undefined;
    inFamily: (artifact: string) => boolean;
    claims: ArtifactView[];
    noun?: string;
    example?: string;
  },
): Move {
  const device = o.device ?? Object.keys(server.cds).find((d) => o.inFamily(server.cds[d] ?? ''));
  if (device === undefined) {
    throw new DisklessError(
      `Server ${server.name || server.id} has no CD device holding a${o.noun === 'ISO' ? 'n' : ''} ${o.noun ?? 'drive'} of the family "${target.family}"; give the "device" input (e.g. ${o.example ?? 'ide:0:1'})`,
    );
  }
  const configured = server.cds[device];
  const running = server.running
    ? o.claims.find((a) => a.claimedBy.includes(server.id) && o.inFamily(a.id))?.id
    : undefined;
  const from = running ?? configured;
  return {
    server,
    device,
    from,
    repoint: configured !== target.id,
    restart: server.running && running !== target.id,
  };
}
