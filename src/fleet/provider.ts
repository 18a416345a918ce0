/**
 * The cloud as the rollout sees it, behind one small interface so that the rollout,
 * retention and the summary do not care which cloud runs the servers. A provider lists
 * servers and what they boot, repoints a server's CD device to another artifact, restarts
 * a server, and tells what is in use. An artifact is what a CD device holds: a drive UUID
 * on ElasticStack (elasticstack.ts), an ISO volume id on Proxmox VE (proxmox.ts).
 *
 * Two views of "what a server boots" exist and both matter:
 *   - configured: the artifact its CD device names now; it boots that at its next start;
 *   - running: the artifact the running server started with. A server that was repointed
 *     and not restarted still runs the old one; ElasticStack shows this as the drive's
 *     claim (`claimed`), which a running server holds on the drives it started with.
 */

export interface ServerView {
  /** The provider's id: a server UUID on ElasticStack, a VMID on Proxmox. */
  id: string;
  name: string;
  tags: string[];
  /** The resource pool it belongs to (Proxmox); undefined elsewhere. */
  pool?: string | undefined;
  /** The provider's status word, as it came (active, stopped, running, ...). */
  status: string;
  running: boolean;
  /** When the running server was last started or reset, Unix seconds; undefined when stopped. */
  started: number | undefined;
  /** Its first NIC's address, when the provider knows it. */
  address: string | undefined;
  /** CD devices (media cdrom) -> the artifact each holds, as configured. */
  cds: Record<string, string>;
}

export interface ArtifactView {
  id: string;
  name: string;
  /** The release the image boots, from the artifact's own record; undefined when unknown. */
  release: string | undefined;
  /** SHA-256 of the image, from the artifact's record; undefined when unknown. */
  sha256: string | undefined;
  /** The family it belongs to (blue/green drives of one purpose), see familyOf. */
  family: string;
  /** Servers that run from it now (the claim a running server holds). */
  claimedBy: string[];
}

export interface Provider {
  /** "elasticstack" or "proxmox": for messages. */
  readonly kind: string;
  /** Every server of the account, by name. */
  listServers(): Promise<ServerView[]>;
  /** One server, fresh. */
  server(id: string): Promise<ServerView>;
  /** Every artifact (drive, ISO file) of the account. */
  listArtifacts(): Promise<ArtifactView[]>;
  /** One artifact; an unknown id is a one-line DisklessError naming it. */
  artifact(id: string): Promise<ArtifactView>;
  /** Points the server's CD device at the artifact (taken at the next start or reset). */
  repoint(server: string, device: string, artifact: string): Promise<void>;
  /** Resets a running server: it restarts at once with its configured devices. */
  restart(server: string): Promise<void>;
  close(): Promise<void>;
}

/** Why an artifact is in use: the servers that run it and those configured to boot it. */
export interface ArtifactUse {
  claimedBy: string[];
  referencedBy: string[];
}

/**
 * What is in use: each artifact that a running server runs (its claim) or that a server's
 * CD device names (it boots it next), with those servers' names.
 */
export function artifactsInUse(
  servers: readonly ServerView[],
  artifacts: readonly ArtifactView[],
): Map<string, ArtifactUse> {
  const names = new Map(servers.map((s) => [s.id, s.name || s.id]));
  const out = new Map<string, ArtifactUse>();
  const use = (id: string): ArtifactUse => {
    const u = out.get(id) ?? { claimedBy: [], referencedBy: [] };
    out.set(id, u);
    return u;
  };
  for (const a of artifacts) {
    for (const s of a.claimedBy) use(a.id).claimedBy.push(names.get(s) ?? s);
  }
  for (const s of servers) {
    for (const id of new Set(Object.values(s.cds))) use(id).referencedBy.push(s.name || s.id);
  }
  return out;
}
