// Renders each action's inputs and outputs tables from the step's typed schemas
// (src/steps.ts: names, required, defaults, descriptions) into README.md, between
// <!-- action:NAME --> and <!-- /action:NAME --> markers. `npm run docs` writes them; a
// test fails when the README, the action.yml files and the schemas disagree.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { exists } from '../src/files.js';
import { isStepName, steps, type Step } from '../src/steps.js';

export const root = path.resolve(import.meta.dirname, '..');

export async function actionNames(): Promise<string[]> {
  const entries = await readdir(path.join(root, 'actions'), { withFileTypes: true });
  const names: string[] = [];
  for (const e of entries) {
    // A folder without an action.yml is not an action (shared entry code).
    if (e.isDirectory() && (await exists(path.join(root, 'actions', e.name, 'action.yml')))) {
      names.push(e.name);
    }
  }
  return names.sort();
}

function cell(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}

export function renderTables(step: Step): string {
  const inputs = Object.entries(step.inputs.fields).map(
    ([name, i]) =>
      `| \`${name}\` | ${i.required ? 'yes' : 'no'} | ${i.default === undefined ? '' : `\`${i.default}\``} | ${cell(i.description ?? '')} |`,
  );
  const outputs = Object.entries(step.outputs).map(
    ([name, o]) => `| \`${name}\` | ${cell(o.description)} |`,
  );
  return [
    '| Input | Required | Default | Description |',
    '|---|---|---|---|',
    ...inputs,
    '',
    '| Output | Description |',
    '|---|---|',
    ...outputs,
  ].join('\n');
}

export function markers(name: string): [string, string] {
  return [`<!-- action:${name} -->`, `<!-- /action:${name} -->`];
}

/** README.md with every action's block replaced by freshly rendered tables, as Prettier lays it out. */
export async function renderReadme(readme: string): Promise<string> {
  const file = path.join(root, 'README.md');
  let out = readme;
  for (const name of await actionNames()) {
    const [start, end] = markers(name);
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no ${start} ... ${end} block`);
    if (!isStepName(name)) throw new Error(`actions/${name} is not a step of src/steps.ts`);
    const tables = renderTables(steps[name]);
    out = `${out.slice(0, from + start.length)}\n${tables}\n${out.slice(to)}`;
  }
  return format(out, { ...(await resolveConfig(file)), filepath: file });
}

if (process.argv[1] === import.meta.filename) {
  const file = path.join(root, 'README.md');
  await writeFile(file, await renderReadme(await readFile(file, 'utf8')));
  console.log('README.md tables updated from the input and output schemas');
}
