/**
 * `diskless action <name|dir> --input key=value ...`: runs a bundled action through
 * the runner-faithful harness and prints what the runner would show: the log, the
 * outputs and the job summary. Exits with the action's exit code.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { runAction } from '../harness/run-action.js';

/** The repository's actions/ folder, seen from this file (src/cli, or the bundle in dist/bundle). */
const ACTIONS_DIR = path.resolve(import.meta.dirname, '../../actions');

function pair(flag: string, value: string | undefined): [string, string] {
  const eq = value?.indexOf('=') ?? -1;
  if (value === undefined || eq <= 0) {
    throw new InputError(flag, `--${flag} needs key=value, got ${JSON.stringify(value ?? '')}`);
  }
  return [value.slice(0, eq), value.slice(eq + 1)];
}

export async function runActionCommand(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name.startsWith('--')) {
    throw new InputError('action', 'diskless action: expected an action name or directory first');
  }
  const dir = existsSync(path.join(ACTIONS_DIR, name, 'action.yml'))
    ? path.join(ACTIONS_DIR, name)
    : path.resolve(name);
  if (!existsSync(path.join(dir, 'action.yml'))) {
    throw new InputError('action', `diskless action: no action.yml for ${JSON.stringify(name)}`);
  }
  const inputs: Record<string, string> = {};
  const env: Record<string, string> = {};
  let workspace: string | undefined;
  let json = false;
  let debug = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--input' || arg === '-i') {
      const [k, v] = pair('input', rest[++i]);
      // A repeated input adds a line, so multi-line inputs can be given one line a flag.
      inputs[k] = k in inputs ? `${inputs[k] ?? ''}\n${v}` : v;
    } else if (arg === '--env') {
      const [k, v] = pair('env', rest[++i]);
      env[k] = v;
    } else if (arg === '--workspace') workspace = path.resolve(rest[++i] ?? '.');
    else if (arg === '--json') json = true;
    else if (arg === '--debug') debug = true;
    else {
      throw new InputError('action', `diskless action: unexpected argument ${JSON.stringify(arg)}`);
    }
  }
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
