/**
 * Runs a bundled JavaScript action the way the GitHub runner does: inputs as
 * INPUT_<NAME> variables (action.yml defaults filled in), fresh GITHUB_OUTPUT,
 * GITHUB_STATE, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files, RUNNER_TEMP and
 * GITHUB_WORKSPACE, the workspace as working directory; then the post step, if the
 * action has one, with the saved state as STATE_<name>. Contract tests and
 * `diskless action` use it on the committed dist bundles.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readActionYml, type ActionDefinition } from './action-yml.js';
import { parseFileCommands } from './file-commands.js';
import { readCommands, type Annotation } from './workflow-commands.js';
import { readTextIfExists } from '../files.js';

export interface RunActionOptions {
  /** The action's directory (holding action.yml). */
  actionDir: string;
  /** Inputs by their action.yml name. */
  inputs?: Record<string, string>;
  /** Extra environment (e.g. PATH changes); the parent's INPUT_*, STATE_*, GITHUB_* never leak in. */
  env?: Record<string, string>;
  /** The workspace; a fresh temporary one when omitted. */
  workspace?: string;
  /** Kill the step after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Show ::debug:: lines in the log, as ACTIONS_STEP_DEBUG does. */
  debug?: boolean;
}

export interface StepRun {
  exitCode: number;
  /** Raw stdout of the process, workflow commands included. */
  stdout: string;
  stderr: string;
  /** The log as the runner shows it: masks applied, commands rendered. */
  log: string[];
  annotations: Annotation[];
  masks: string[];
  summary: string;
}

export interface ActionRun {
  action: ActionDefinition;
  /** The main step's exit code: 0 success, anything else failure. */
  exitCode: number;
  main: StepRun;
  post: StepRun | undefined;
  outputs: Record<string, string>;
  state: Record<string, string>;
  /** Variables the action exported for later steps (GITHUB_ENV). */
  exportedEnv: Record<string, string>;
  /** Directories the action added to PATH for later steps (GITHUB_PATH). */
  addedPath: string[];
  /** Summary of main and post, as the job summary would show it. */
  summary: string;
}

/** The runner's variable name for an input: upper-cased, spaces to _, hyphens kept. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** The parent environment without anything the runner would not pass to a step. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(INPUT_|STATE_|GITHUB_|RUNNER_|ACTIONS_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** A file command file the action may not have written. */
async function readIfExists(file: string): Promise<string> {
  return (await readTextIfExists(file)) ?? '';
}

interface Phase {
  script: string;
  env: Record<string, string>;
  cwd: string;
  timeoutMs: number;
  debug: boolean;
  files: Record<'output' | 'state' | 'env' | 'path' | 'summary', string>;
}

function spawnNode(p: Phase): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [p.script], {
      cwd: p.cwd,
      env: p.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), p.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        exitCode: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}step killed by ${signal} (timeout ${p.timeoutMs} ms)\n` : stderr,
      });
    });
  });
}

async function runPhase(p: Phase): Promise<StepRun> {
  await Promise.all(Object.values(p.files).map((f) => writeFile(f, '')));
  const env = {
    ...p.env,
    GITHUB_OUTPUT: p.files.output,
    GITHUB_STATE: p.files.state,
    GITHUB_ENV: p.files.env,
    GITHUB_PATH: p.files.path,
    GITHUB_STEP_SUMMARY: p.files.summary,
  };
  const { exitCode, stdout, stderr } = await spawnNode({ ...p, env });
  const commands = readCommands(stdout, stderr, p.debug);
  return {
    exitCode,
    stdout,
    stderr,
    ...commands,
    summary: await readIfExists(p.files.summary),
  };
}

/** `post-if` as the runner evaluates its usual values; the default is always(). */
function postRuns(condition: string | undefined, mainOk: boolean): boolean {
  const c = (condition ?? 'always()').replace(/^\$\{\{\s*|\s*\}\}$/g, '').trim();
  if (c === 'always()') return true;
  if (c === 'success()') return mainOk;
  if (c === 'failure()') return !mainOk;
  if (c === 'cancelled()') return false;
  throw new Error(`post-if "${condition ?? ''}" is not supported by this harness`);
}

export async function runAction(options: RunActionOptions): Promise<ActionRun> {
  const action = await readActionYml(path.resolve(options.actionDir));
  const inputs = options.inputs ?? {};
  for (const name of Object.keys(inputs)) {
    if (!(name in action.inputs)) {
      throw new Error(`${action.name} has no input "${name}" (see ${action.dir}/action.yml)`);
    }
  }

  const runnerDir = await mkdtemp(path.join(os.tmpdir(), 'diskless-runner-'));
  const workspace = options.workspace ?? path.join(runnerDir, 'workspace');
  const temp = path.join(runnerDir, 'temp');
  const commandDir = path.join(runnerDir, 'file-commands');
  await Promise.all([workspace, temp, commandDir].map((d) => mkdir(d, { recursive: true })));

  const env: Record<string, string> = {
    ...baseEnv(),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_ACTION: action.name,
    GITHUB_ACTION_PATH: action.dir,
    RUNNER_TEMP: temp,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'diskless-harness',
    ...(options.debug ? { RUNNER_DEBUG: '1' } : {}),
    ...options.env,
  };
  // The runner sets every input the action declares: given value, else its default.
  for (const [name, spec] of Object.entries(action.inputs)) {
    const value = inputs[name] ?? spec.default;
    if (value !== undefined && !value.includes('${{')) env[inputVariable(name)] = value;
  }

  const files = (phase: string) => ({
    output: path.join(commandDir, `${phase}-output`),
    state: path.join(commandDir, `${phase}-state`),
    env: path.join(commandDir, `${phase}-env`),
    path: path.join(commandDir, `${phase}-path`),
    summary: path.join(commandDir, `${phase}-summary`),
  });
  const common = {
    cwd: workspace,
    timeoutMs: options.timeoutMs ?? 600_000,
    debug: !!options.debug,
  };

  try {
    const mainFiles = files('main');
    const main = await runPhase({
      ...common,
      script: path.join(action.dir, action.runs.main),
      env,
      files: mainFiles,
    });
    const outputs = parseFileCommands(await readIfExists(mainFiles.output), 'GITHUB_OUTPUT');
    const state = parseFileCommands(await readIfExists(mainFiles.state), 'GITHUB_STATE');
    const exportedEnv = parseFileCommands(await readIfExists(mainFiles.env), 'GITHUB_ENV');
    const addedPath = (await readIfExists(mainFiles.path)).split('\n').filter(Boolean);

    let post: StepRun | undefined;
    if (action.runs.post && postRuns(action.runs['post-if'], main.exitCode === 0)) {
      const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
      post = await runPhase({
        ...common,
        script: path.join(action.dir, action.runs.post),
        env: { ...env, ...exportedEnv, ...stateEnv },
        files: files('post'),
      });
    }
    return {
      action,
      exitCode: main.exitCode,
      main,
      post,
      outputs,
      state,
      exportedEnv,
      addedPath,
      summary: main.summary + (post?.summary ?? ''),
    };
  } finally {
    await rm(runnerDir, { recursive: true, force: true });
  }
}
