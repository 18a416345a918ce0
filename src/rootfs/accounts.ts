/**
 * The client's account files, derived from the master's: every client root is readable
 * by every client's root (NFS lets it become any uid), so password hashes there are
 * offline-crackable copies of the master's logins. As LTSP does, the client gets:
 *   - shadow and gshadow with every hash locked ("!"), except for the accounts that
 *     input keep-password-hashes names;
 *   - passwd, shadow, group and gshadow without the master's non-system users (UID_MIN to
 *     UID_MAX of login.defs) and their groups, except those that input client-users names;
 *     left-out users are dropped from the member lists of the groups that stay.
 * Computed before the copy (it is part of the build's fingerprint), written after it.
 */
import path from 'node:path';
import { inputError } from '../errors.js';
import type { ClientTree } from './tree.js';
import { readTextIfExists } from '../files.js';

export const ACCOUNT_FILES = ['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow'] as const;
type AccountFile = (typeof ACCOUNT_FILES)[number];

const LOCKED = '!';

/** UID_MIN/UID_MAX (GID_*) of the master's login.defs; Debian's defaults otherwise. */
function range(defs: string, name: 'UID' | 'GID'): [number, number] {
  const value = (key: string, fallback: number) => {
    const m = new RegExp(`^\\s*${key}\\s+(\\d+)`, 'm').exec(defs);
    return m?.[1] ? Number(m[1]) : fallback;
  };
  return [value(`${name}_MIN`, 1000), value(`${name}_MAX`, 60000)];
}

function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function lines(table: string[][]): string {
  return table.map((r) => `${r.join(':')}\n`).join('');
}

/** The account files as the client gets them, by path relative to the root. */
export async function clientAccounts(
  source: string,
  o: { clientUsers: readonly string[]; keepPasswordHashes: readonly string[] },
): Promise<Map<AccountFile, string>> {
  const read = async (rel: string) => readTextIfExists(path.join(source, rel));
  const [passwd, group, shadow, gshadow, defs] = await Promise.all([
    ...ACCOUNT_FILES.map(read),
    read('etc/login.defs'),
  ]);
  const out = new Map<AccountFile, string>();
  if (passwd === undefined) return out;
  const users = rows(passwd);
  const names = new Set(users.map((u) => u[0] ?? ''));
  for (const [input, list] of [
    ['client-users', o.clientUsers],
    ['keep-password-hashes', o.keepPasswordHashes],
  ] as const) {
    const unknown = list.find((n) => !names.has(n));
    if (unknown !== undefined) {
      throw inputError(
        input,
        unknown,
        `the name of an account in the master's ${path.join(source, 'etc/passwd')}`,
      );
    }
  }
  const [uidMin, uidMax] = range(defs ?? '', 'UID');
  const [gidMin, gidMax] = range(defs ?? '', 'GID');
  const allowed = new Set(o.clientUsers);
  const kept = users.filter((u) => {
    const uid = Number(u[2]);
    return !(uid >= uidMin && uid <= uidMax) || allowed.has(u[0] ?? '');
  });
  const keptNames = new Set(kept.map((u) => u[0] ?? ''));
  const keptGids = new Set(kept.map((u) => u[3] ?? ''));
  out.set('etc/passwd', lines(kept));
  const keepHash = new Set(o.keepPasswordHashes.filter((n) => keptNames.has(n)));

  const groupNames = new Set<string>();
  if (group !== undefined) {
    const groups = rows(group)
      .filter((g) => {
        const gid = Number(g[2]);
        return (
          !(gid >= gidMin && gid <= gidMax) || keptGids.has(g[2] ?? '') || allowed.has(g[0] ?? '')
        );
      })
      .map((g) => {
        groupNames.add(g[0] ?? '');
        return [g[0] ?? '', g[1] ?? '', g[2] ?? '', members(g[3], keptNames)];
      });
    out.set('etc/group', lines(groups));
  }
  if (shadow !== undefined) {
    const table = rows(shadow)
      .filter((s) => keptNames.has(s[0] ?? ''))
      .map((s) => {
        const [name = '', hash = '', ...rest] = s;
        return [name, keepHash.has(name) ? hash : locked(hash), ...rest];
      });
    out.set('etc/shadow', lines(table));
  }
  if (gshadow !== undefined) {
    const table = rows(gshadow)
      .filter((g) => groupNames.has(g[0] ?? ''))
      .map((g) => [
        g[0] ?? '',
        locked(g[1] ?? ''),
        members(g[2], keptNames),
        members(g[3], keptNames),
      ]);
    out.set('etc/gshadow', lines(table));
  }
  return out;
}

/** A hash field made unusable and empty of the hash ("*" stays: no password at all). */
function locked(hash: string): string {
  return hash === '*' || hash === LOCKED ? hash : LOCKED;
}

function members(list: string | undefined, keep: ReadonlySet<string>): string {
  return (list ?? '')
    .split(',')
    .filter((m) => m !== '' && keep.has(m))
    .join(',');
}

/** Writes the derived account files over the copied ones (same modes as Debian's). */
export async function writeAccounts(
  tree: ClientTree,
  files: ReadonlyMap<AccountFile, string>,
): Promise<void> {
  for (const [rel, text] of files) {
    const secret = rel.endsWith('shadow');
    await tree.writeFile(rel, text, { mode: secret ? 0o640 : 0o644, mtime: new Date(0) });
  }
}
