/**
 * A file that a Debian package shipped and that nobody changed is public: anyone can
 * download the package. Libraries carry test keys for their self-tests (GnuTLS does), so
 * a hit in such a file is dropped when its MD5 is the one in dpkg's md5sums of the
 * master. Only hit files are hashed, and the lists are read only when there are hits.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { SecretHit } from './scan-tree.js';

async function md5File(file: string): Promise<string | undefined> {
  const hash = createHash('md5');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch {
    return undefined;
  }
  return hash.digest('hex');
}

/** path (relative to /, no leading /) -> md5 from every package's md5sums in `source`. */
async function shippedSums(source: string): Promise<Map<string, string>> {
  const info = path.join(source, 'var/lib/dpkg/info');
  const sums = new Map<string, string>();
  const names = await readdir(info).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('.md5sums'))) {
    for (const line of (await readFile(path.join(info, name), 'utf8')).split('\n')) {
      const m = /^([0-9a-f]{32}) {2}(.+)$/.exec(line);
      if (m?.[1] && m[2]) sums.set(m[2], m[1]);
    }
  }
  return sums;
}

/**
 * The hits that are not files shipped unchanged by a package of `source`. `fileOf`
 * gives a hit's file on disk and its path relative to the master's / (undefined when it
 * cannot be a package's file).
 */
export async function withoutShippedFiles(
  hits: readonly SecretHit[],
  source: string,
  fileOf: (hit: SecretHit) => { file: string; rel: string } | undefined,
): Promise<SecretHit[]> {
  if (hits.length === 0) return [];
  const sums = await shippedSums(source);
  const kept: SecretHit[] = [];
  for (const hit of hits) {
    const where = fileOf(hit);
    const expected = where
      ? (sums.get(where.rel) ?? sums.get(where.rel.replace(/^usr\//, '')))
      : undefined;
    if (!where || !expected || (await md5File(where.file)) !== expected) kept.push(hit);
  }
  return kept;
}
