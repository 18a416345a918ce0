/**
 * The template: a directory tree laid over the copy (owner root, modes kept). A file
 * whose name ends in `.tmpl` is rendered: each `{{NAME}}` becomes the build's value for
 * NAME, and the file is written without the suffix. The whole template is read and
 * rendered before anything is touched, so a bad template changes nothing.
 */
import { readdir, readFile, readlink, lstat } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import type { ClientTree } from './tree.js';

export const TEMPLATE_SUFFIX = '.tmpl';

export type TemplateEntry =
  | { kind: 'dir'; rel: string; mode: number }
  | { kind: 'file'; rel: string; mode: number; data: Buffer; mtime: Date; from: string }
  | { kind: 'symlink'; rel: string; target: string };

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/**
 * The values a `.tmpl` file may use. A value that is undefined is known but not given:
 * using it is an error naming the input that provides it.
 */
export type TemplateValues = Record<string, { value: string | undefined; input: string }>;

/** Renders `text`, or throws naming the file, line and placeholder. */
export function render(text: string, values: TemplateValues, file: string): string {
  const lines = text.split('\n');
  return lines
    .map((line, i) =>
      line.replace(PLACEHOLDER, (_, name: string) => {
        const where = `template ${file} line ${i + 1}`;
        const known = Object.hasOwn(values, name) ? values[name] : undefined;
        if (!known) {
          throw new DisklessError(
            `${where}: unknown placeholder {{${name}}}; expected one of ${Object.keys(values)
              .sort()
              .map((k) => `{{${k}}}`)
              .join(', ')}`,
          );
        }
        if (known.value === undefined || known.value === '') {
          throw new DisklessError(
            `${where}: placeholder {{${name}}} has no value; expected input "${known.input}" to be set`,
          );
        }
        return known.value;
      }),
    )
    .join('\n');
}

/** Reads and renders the template tree; throws before anything is written. */
export async function loadTemplate(dir: string, values: TemplateValues): Promise<TemplateEntry[]> {
  const entries: TemplateEntry[] = [];
  const seen = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const srcRel = rel ? `${rel}/${name}` : name;
      const src = path.join(dir, srcRel);
      const st = await lstat(src);
      if (rel === '' && name === '.git') continue; // a template kept in its own repository
      let outRel = srcRel;
      if (st.isFile() && name.endsWith(TEMPLATE_SUFFIX) && name !== TEMPLATE_SUFFIX) {
        outRel = srcRel.slice(0, -TEMPLATE_SUFFIX.length);
      }
      const clash = seen.get(outRel);
      if (clash !== undefined) {
        throw new DisklessError(
          `template: ${clash} and ${srcRel} both make /${outRel}; expected only one of them`,
        );
      }
      seen.set(outRel, srcRel);
      if (st.isDirectory()) {
        entries.push({ kind: 'dir', rel: outRel, mode: st.mode & 0o7777 });
        await walk(srcRel);
      } else if (st.isSymbolicLink()) {
        entries.push({ kind: 'symlink', rel: outRel, target: await readlink(src) });
      } else if (st.isFile()) {
        let data = await readFile(src);
        if (outRel !== srcRel) data = Buffer.from(render(data.toString('utf8'), values, srcRel));
        entries.push({
          kind: 'file',
          rel: outRel,
          mode: st.mode & 0o7777,
          data,
          mtime: st.mtime,
          from: srcRel,
        });
      } else {
        throw new DisklessError(
          `template: ${srcRel} is a device, socket or pipe; expected files, directories and symlinks only`,
        );
      }
    }
  }
  await walk('');
  return entries;
}

/** Lays the template over the client root: owner root, modes kept, never in place. */
export async function applyTemplate(
  tree: ClientTree,
  entries: readonly TemplateEntry[],
): Promise<number> {
  let files = 0;
  for (const entry of entries) {
    if (entry.kind === 'dir') {
      // An existing directory keeps its owner and mode (a checkout's umask must not
      // loosen /etc); a new one gets the template's mode.
      await tree.directory(entry.rel, entry.mode);
    } else if (entry.kind === 'symlink') {
      await tree.symlink(entry.rel, entry.target);
      files++;
    } else {
      await tree.writeFile(entry.rel, entry.data, { mode: entry.mode, mtime: entry.mtime });
      files++;
    }
  }
  return files;
}
