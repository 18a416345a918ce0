/**
 * `diskless action <name|dir> --input key=value ...`: runs a bundled action through
 * the runner-faithful harness and prints what the runner would show: the log, the
 * outputs and the job summary. Exits with the action's exit code.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { runAction } from '../harness/run-action.js';
import { custom, FieldError, filePath } from '../inputs/fields.js';
import { defineInputs, readInputs, readValue } from '../inputs/read.js';
import { flagHelp, flagSource, parseFlags, switchHelp } from './flags.js';

/** The repository's actions/ folder, seen from this file (src/cli, or the bundle in dist/bundle). */
const ACTIONS_DIR = path.resolve(import.meta.dirname, '../../actions');

/** key=value: the key before the first '=', which must not be empty. */
function pair(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new FieldError();
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** The flags of `diskless action`: what --help prints and how each is read. */
export const actionFlags = defineInputs(
  {
    input: custom(
      {
        expected: 'key=value',
      },
      pair,
    ),
    env: custom(
      {
        expected: 'key=value',
      },
      pair,
    ),
    workspace: filePath({}),
  },
  undefined,
  {
    input:
      'key=value: an input of the action (-i; repeatable: a repeated key adds a line, for multi-line inputs)',
    env: "key=value: a variable of the action's environment (repeatable)",
    workspace: 'GITHUB_WORKSPACE of the run (default a new temporary one)',
  },
);

export const ACTION_USAGE = `usage: diskless action <name|dir> [flags]

Runs a bundled action (a folder of actions/, or a directory with an action.yml) the way
the GitHub runner does, and prints the log, the outputs and the job summary. Exits with
the action's exit code.

${flagHelp(actionFlags.fields)}
${switchHelp(['json', 'debug'])}`;

export async function runActionCommand(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === '--help' || name === '-h') {
    console.log(ACTION_USAGE);
    return 0;
  }
  if (!name || name.startsWith('--')) {
    throw new InputError('action', 'diskless action: expected an action name or directory first');
  }
  const dir = existsSync(path.join(ACTIONS_DIR, name, 'action.yml'))
    ? path.join(ACTIONS_DIR, name)
    : path.resolve(name);
  if (!existsSync(path.join(dir, 'action.yml'))) {
    throw new InputError('action', `diskless action: no action.yml for ${JSON.stringify(name)}`);
  }
  const parsed = parseFlags(rest, actionFlags.fields, ['json', 'debug', 'help'], { '-i': 'input' });
  if (parsed.switches.has('help')) {
    console.log(ACTION_USAGE);
    return 0;
  }
  // Each --input and --env is read alone: a value may hold newlines.
  const pairs = (flag: 'input' | 'env') =>
    (parsed.raw.get(flag) ?? []).map((raw) => readValue(flag, actionFlags.fields[flag], raw));
  const inputs: Record<string, string> = {};
  for (const [k, v] of pairs('input')) {
    // A repeated input adds a line, so multi-line inputs can be given one line a flag.
    inputs[k] = k in inputs ? `${inputs[k] ?? ''}\n${v}` : v;
  }
  const env = Object.fromEntries(pairs('env'));
  const { workspace } = readInputs(
    defineInputs({ workspace: actionFlags.fields.workspace }),
    flagSource(parsed, actionFlags.fields, {}),
  );
  const json = parsed.switches.has('json');
  const debug = parsed.switches.has('debug');
  const run = await runAction({ actionDir: dir, inputs, env, workspace, debug });
  if (json) {
    const { action: _action, ...shown } = run;
    console.log(JSON.stringify(shown, null, 2));
    return run.exitCode;
  }
  console.log(run.main.log.join('\n'));
  if (run.post) console.log(`--- post ---\n${run.post.log.join('\n')}`);
  console.log(`--- exit code ${run.exitCode} ---`);
  for (const [k, v] of Object.entries(run.outputs)) console.log(`output ${k}=${v}`);
  if (run.summary) console.log(`--- job summary ---\n${run.summary}`);
  return run.exitCode;
}
