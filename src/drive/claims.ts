/**
 * Who holds a drive, read from its `claimed` field: the servers that run from it and the
 * server-side copies in progress. upload-drive refuses or keeps drives by it; the rollout
 * provider tells from it which drive a running server still runs.
 */

/**
 * The claims on a drive, one per holder: a server's `<user>:guest:<server>:<device>` (or
 * a bare server UUID, as the Drive API page describes them), or a copy's
 * `<user>:imaging:<drive>`.
 */
export function claimsOf(d: { claimed?: string | undefined }): string[] {
  return (d.claimed ?? '').split(/\s+/).filter((c) => c !== '');
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** UUIDs of the servers claiming the drive (copies in progress left out). */
export function serverClaims(d: { claimed?: string | undefined }): string[] {
  const servers = claimsOf(d).flatMap((c) => {
    if (/:imaging:/.test(c)) return [];
    const guest = /:guest:([^:]+)/.exec(c);
    if (guest?.[1]) return [guest[1]];
    const bare = UUID.exec(c);
    return bare ? [bare[0]] : [];
  });
  return [...new Set(servers)];
}
