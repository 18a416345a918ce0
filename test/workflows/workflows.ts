/**
 * The repository's workflows as data, and the checks the workflow tests make of them:
 * which inputs a `uses: ./actions/<name>` step passes, which step and job outputs an
 * expression reads, and the artifact names and paths between jobs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import type { FunctionDefinition } from '@actions/expressions/funcs/info';
import { truthy } from '@actions/expressions/result';
import { parse } from 'yaml';
import { readActionYml, type ActionDefinition } from '../../src/harness/action-yml.js';
import { actionNames } from '../../scripts/readme-tables.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const WORKFLOW_DIR = path.join(REPO, '.github/workflows');

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

export interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  'runs-on'?: unknown;
  'timeout-minutes'?: number;
  permissions?: Record<string, string> | string;
  environment?: unknown;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  strategy?: { 'fail-fast'?: boolean; matrix?: Record<string, unknown> };
  outputs?: Record<string, string>;
  steps?: Step[];
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: unknown;
}

export interface InputSpec {
  type?: string;
  required?: boolean;
  default?: unknown;
  description?: string;
}

export interface Workflow {
  name?: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  jobs: Record<string, Job>;
}

export interface WorkflowFile {
  file: string;
  /** Path relative to the repository, as `uses:` names a local workflow. */
  rel: string;
  text: string;
  doc: Workflow;
}

export function workflowFiles(): string[] {
  return readdirSync(WORKFLOW_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(WORKFLOW_DIR, f));
}

export function loadWorkflow(file: string): WorkflowFile {
  const text = readFileSync(file, 'utf8');
  return {
    file,
    rel: path.relative(REPO, file),
    text,
    doc: parse(text) as Workflow,
  };
}

export function workflow(name: string): WorkflowFile {
  return loadWorkflow(path.join(WORKFLOW_DIR, name));
}

export function needsOf(job: Job): string[] {
  if (job.needs === undefined) return [];
  return typeof job.needs === 'string' ? [job.needs] : job.needs;
}

/** The step of `job` with this id, or this `uses:` prefix. */
export function stepOf(job: Job, match: { id?: string; uses?: string; name?: string }): Step {
  const found = (job.steps ?? []).filter(
    (s) =>
      (match.id === undefined || s.id === match.id) &&
      (match.uses === undefined || (s.uses ?? '').startsWith(match.uses)) &&
      (match.name === undefined || s.name === match.name),
  );
  if (found.length !== 1) {
    throw new Error(`expected one step matching ${JSON.stringify(match)}, found ${found.length}`);
  }
  return found[0] as Step;
}

export async function localActions(): Promise<Map<string, ActionDefinition>> {
  const out = new Map<string, ActionDefinition>();
  for (const name of await actionNames()) {
    out.set(`./actions/${name}`, await readActionYml(path.join(REPO, 'actions', name)));
  }
  return out;
}

/**
 * Problems with the inputs a local-action step passes: an input the action does not
 * declare, or a required input (required, no default) left out.
 */
export function inputProblems(step: Step, action: ActionDefinition): string[] {
  const given = Object.keys(step.with ?? {});
  const problems: string[] = [];
  for (const name of given) {
    if (!Object.hasOwn(action.inputs, name)) {
      problems.push(`${step.uses ?? ''}: input "${name}" is not declared in its action.yml`);
    }
  }
  for (const [name, spec] of Object.entries(action.inputs)) {
    if (spec.required && spec.default === undefined && !given.includes(name)) {
      problems.push(`${step.uses ?? ''}: required input "${name}" is missing`);
    }
  }
  return problems;
}

/** Every `${{ ... }}` expression in a value, nested mappings and lists included. */
export function expressions(value: unknown): string[] {
  if (typeof value === 'string')
    return [...value.matchAll(/\$\{\{(.*?)\}\}/gs)].map((m) => m[1] ?? '');
  if (Array.isArray(value)) return value.flatMap(expressions);
  if (value && typeof value === 'object') return Object.values(value).flatMap(expressions);
  return [];
}

/** `prefix.<a>.<key>.<b>` references in expressions, as [a, b] pairs. */
export function references(value: unknown, prefix: string, key: string): [string, string][] {
  const re = new RegExp(`\\b${prefix}\\.([A-Za-z0-9_-]+)\\.${key}\\.([A-Za-z0-9_-]+)`, 'g');
  return expressions(value).flatMap((e) =>
    [...e.matchAll(re)].map((m): [string, string] => [m[1] ?? '', m[2] ?? '']),
  );
}

/**
 * `text` with every `${{ expr }}` replaced by `values[expr]`; throws on an expression it
 * has no value for, so a renamed output or input shows up.
 */
export function expand(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/gs, (_, expr: string) => {
    const value = values[expr];
    if (value === undefined)
      throw new Error(`no value for \${{ ${expr} }} in ${JSON.stringify(text)}`);
    return value;
  });
}

/** Whether `name` matches an artifact `pattern` (download-artifact's `*` globs). */
export function globMatch(pattern: string, name: string): boolean {
  const body = pattern
    .split('*')
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${body}$`).test(name);
}

/**
 * Evaluates a job's `if:` as the runner does, with GitHub's own expression library: the
 * implicit `success() &&` when no status function is used, and the status functions
 * answered from `status`.
 */
export function evaluateIf(
  condition: string,
  status: {
    inputs: object;
    needs: object;
    cancelled: boolean;
    success: boolean;
    github?: object;
    vars?: object;
    /** For a step's `if:` in a matrix job. */
    matrix?: object;
  },
): boolean {
  let text = condition.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1');
  if (!/\b(success|failure|cancelled|always)\(\)/.test(text)) text = `success() && (${text})`;
  const fn = (name: string, value: boolean): FunctionDefinition => ({
    name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(value),
  });
  const functions = [
    fn('success', status.success && !status.cancelled),
    fn('failure', false),
    fn('cancelled', status.cancelled),
    fn('always', true),
  ];
  const lexed = new Lexer(text).lex();
  const expr = new Parser(
    lexed.tokens,
    ['inputs', 'needs', 'github', 'vars', 'matrix'],
    functions,
  ).parse();
  const context = JSON.parse(
    JSON.stringify({
      inputs: status.inputs,
      needs: status.needs,
      github: status.github ?? {},
      vars: status.vars ?? {},
      matrix: status.matrix ?? {},
    }),
    data.reviver,
  ) as data.Dictionary;
  const result = new Evaluator(
    expr,
    context,
    new Map(functions.map((f) => [f.name.toLowerCase(), f])),
  ).evaluate();
  return truthy(result);
}

/**
 * Renders a `with:` value the way the runner does: each `${{ expr }}` evaluated (with the
 * real expression library: format(), &&, ||) against the given contexts.
 */
export function renderValue(value: string, contexts: Record<string, object>): string {
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, text: string) => {
    const expr = new Parser(new Lexer(text).lex().tokens, Object.keys(contexts), []).parse();
    const context = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
    const result = new Evaluator(expr, context, new Map()).evaluate();
    return result.kind === data.Kind.Null ? '' : result.coerceString();
  });
}
