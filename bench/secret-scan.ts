/**
 * Secret scan benchmark (issue 14): the content scan's speed, in files and MiB per second,
 * on the sample root as a copy-usr client root holds it (all of it, /usr included) and on
 * this machine's full /usr; plus how many files the rules named (expected: none).
 *
 *   npx tsx bench/secret-scan.ts [--root DIR] [--usr DIR]
 *
 * Every file is read (no previous release to skip against). Needs the sample root
 * (scripts/sample-root, cached in /var/cache/diskless/sample-root).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { withoutShippedFiles } from '../src/secrets/packaged.js';
import { scanSecrets, showHits } from '../src/secrets/scan-tree.js';
import { flag } from './lib/measure.js';

const repo = path.resolve(import.meta.dirname, '..');
const root =
  flag('--root') ??
  execFileSync(path.join(repo, 'scripts/sample-root'), [], { encoding: 'utf8' }).trim();
const usr = flag('--usr') ?? '/usr';

async function measure(name: string, dir: string, source: string, skip: string[] = []) {
  const start = process.hrtime.bigint();
  const r = await scanSecrets({ root: dir, allow: [], skip, prefix: dir === source ? '' : '/usr' });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  const hits = await withoutShippedFiles(r.hits, source, (h) => ({
    file: path.join(source, h.path),
    rel: h.path.slice(1),
  }));
  const mib = r.readBytes / 2 ** 20;
  console.log(`\nsecret scan, ${name} (${dir})`);
  const rows: [string, string][] = [
    ['files read / in the tree', `${r.read} / ${r.files}`],
    ['data read', `${mib.toFixed(0)} MiB`],
    ['time', `${s.toFixed(2)} s`],
    ['speed', `${(r.read / s).toFixed(0)} files/s, ${(mib / s).toFixed(1)} MiB/s`],
    ['hits (package files shipped unchanged dropped)', `${hits.length} (of ${r.hits.length})`],
  ];
  for (const [k, v] of rows) console.log(`  ${k.padEnd(50)} ${v}`);
  if (hits.length > 0) console.log(`  ${showHits(hits)}`);
}

await measure('the sample root as a copy-usr client root', root, root, [
  'proc',
  'sys',
  'dev',
  'run',
  'tmp',
  'var',
  'boot',
  'home',
  'root',
]);
await measure("this machine's full /usr", usr, '/');
