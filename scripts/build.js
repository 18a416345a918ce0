#!/usr/bin/env node
// Bundles every action entry and the CLI with ncc into their committed dist/ folders.
// `--check` bundles into a scratch folder instead and fails when the committed bundles
// differ from what the sources produce (CI runs this: dist/ must match the sources).
import { execFile } from 'node:child_process';
import { chmod, cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');

const actions = (await readdir(path.join(root, 'actions'), { withFileTypes: true }))
  .filter((d) => d.isDirectory() && d.name !== 'common')
  .map((d) => d.name)
  .sort();
const bundles = [
  ...actions.map((name) => ({ entry: `actions/${name}/main.ts`, out: `actions/${name}/dist` })),
  { entry: 'src/cli/main.ts', out: 'dist/cli' },
];

const scratch = await mkdtemp(path.join(os.tmpdir(), 'diskless-build-'));
const ncc = path.join(root, 'node_modules/@vercel/ncc/dist/ncc/cli.js');

async function listFiles(dir) {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
      .sort();
  } catch {
    return [];
  }
}

async function bundle({ entry, out }) {
  const dest = path.join(scratch, out);
  await run(
    process.execPath,
    [ncc, 'build', entry, '-o', dest, '--license', 'licenses.txt', '--target', 'es2022', '-q'],
    { cwd: root, maxBuffer: 64 << 20 },
  );
  // The CLI bundle is package.json's bin: it must be executable.
  if (out === 'dist/cli') await chmod(path.join(dest, 'index.js'), 0o755);
  return dest;
}

let stale = [];
try {
  // Two at a time: ncc is CPU-bound and CI machines have two cores.
  for (let i = 0; i < bundles.length; i += 2) {
    await Promise.all(bundles.slice(i, i + 2).map(bundle));
  }
  for (const { out } of bundles) {
    const built = path.join(scratch, out);
    const committed = path.join(root, out);
    if (!check) {
      await rm(committed, { recursive: true, force: true });
      await cp(built, committed, { recursive: true });
      console.log(`built ${out}`);
      continue;
    }
    const want = await listFiles(built);
    const have = await listFiles(committed);
    for (const file of new Set([...want, ...have])) {
      const a = want.includes(file) ? await readFile(path.join(built, file)) : null;
      const b = have.includes(file) ? await readFile(path.join(committed, file)) : null;
      if (!a || !b || !a.equals(b)) stale.push(`${out}/${file}`);
    }
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}

if (stale.length > 0) {
  console.error(
    `dist/ is stale: ${stale.join(', ')} differ from what the sources build.\n` +
      'Run `npm run build` and commit the result.',
  );
  process.exit(1);
}
if (check) console.log(`dist/ matches the sources (${bundles.length} bundles)`);
