/**
 * What went into the boot image, listed and scanned before the ISO is written: the staged
 * ISO tree and the initramfs unpacked (unmkinitramfs), with the same scan as the client
 * root. A hit fails the build naming the path inside the image (`/boot/initrd.img:/etc/...`);
 * the listing (kind, mode, SHA-256 or link target, path) is written beside the ISO as
 * <output>.contents, so what a release ships can be read without unpacking it.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../process/run.js';
import { assertNoSecrets, scanSecrets, type SecretHit } from '../secrets/scan-tree.js';
import { listTree } from './initramfs.js';
import { INITRD_PATH } from './loaders.js';

export interface ImageContents {
  /** One line per entry. */
  listing: string;
  files: number;
}

/** Lists and scans the ISO tree `stage` and its initramfs; throws on any hit. */
export async function scanImage(o: { stage: string; scratch: string }): Promise<ImageContents> {
  const unpacked = path.join(o.scratch, 'initramfs-contents');
  await run('unmkinitramfs', [path.join(o.stage, INITRD_PATH), unpacked], {
    debianPackage: 'initramfs-tools-core',
  });
  // An image with early microcode unpacks into early*/ and main/.
  const names = await readdir(unpacked);
  const parts = names.includes('main')
    ? names.map((n) => ({ dir: path.join(unpacked, n), prefix: `/${INITRD_PATH}:${n}` }))
    : [{ dir: unpacked, prefix: `/${INITRD_PATH}:` }];
  const trees = [{ dir: o.stage, prefix: '' }, ...parts];
  const lines: string[] = [];
  const hits: SecretHit[] = [];
  let files = 0;
  for (const tree of trees) {
    for (const e of await listTree(tree.dir)) {
      lines.push(
        `${e.kind} ${e.mode.toString(8).padStart(4, '0')} ${e.content || '-'} ${tree.prefix}/${e.rel}`,
      );
      if (e.kind === 'f') files++;
    }
    const scan = await scanSecrets({ root: tree.dir, prefix: tree.prefix, allow: [] });
    hits.push(...scan.hits);
  }
  assertNoSecrets(hits, 'the boot image would give clients');
  return { listing: `${lines.join('\n')}\n`, files };
}
