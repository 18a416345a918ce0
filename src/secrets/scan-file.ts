/**
 * Reads one file of any size as overlapping windows, so that memory stays bounded and no
 * key is missed because the file is large (a key at the end of a big certificate bundle)
 * or binary (a keystore). The overlap is longer than any marker and the start of a key
 * body, so a key cut by a window's end is whole in the next window.
 */
import { open } from 'node:fs/promises';
import { structureRule, windowRules } from './key-formats.js';
import { lintableText, type TokenScanner } from './token-rules.js';

const WINDOW = 1 << 20;
const OVERLAP = 16 << 10;

/** The own rules that match `file` (path `rel` in its root); tokens go to `tokens`. */
export async function scanFile(
  file: string,
  rel: string,
  tokens: TokenScanner,
): Promise<Set<string>> {
  const hits = new Set<string>();
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const buf = Buffer.alloc(Math.min(WINDOW + OVERLAP, Math.max(size, 1)));
    let kept = 0; // bytes carried over from the previous window
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, kept, buf.length - kept, position);
      const window = buf.subarray(0, kept + bytesRead);
      if (position === 0) {
        const rule = structureRule(window, size);
        if (rule) hits.add(rule);
      }
      position += bytesRead;
      const text = window.toString('latin1');
      for (const rule of windowRules(window, text, rel)) hits.add(rule);
      await tokens.add(rel, lintableText(window, text));
      if (bytesRead === 0 || position >= size || window.length < buf.length) break;
      buf.copyWithin(0, window.length - OVERLAP, window.length);
      kept = OVERLAP;
    }
  } finally {
    await handle.close();
  }
  return hits;
}
