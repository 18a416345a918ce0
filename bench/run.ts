// `npm run bench [-- part ... [--flag ...]]`: runs each benchmark part (default: all) in its own
// process, one after the other, so one part's memory and caches do not skew the next.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;
const parts = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();
// Part names first, then flags passed to every part: `npm run bench -- upload --small-only`.
const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const asked = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
for (const part of asked) {
  if (!parts.includes(part)) {
    console.error(`bench: no part "${part}"; expected one of ${parts.join(', ')}`);
    process.exit(2);
  }
}
let failed = false;
for (const part of asked.length > 0 ? asked : parts) {
  console.log(`\n=== bench: ${part}`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(here, `${part}.ts`), ...flags],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
