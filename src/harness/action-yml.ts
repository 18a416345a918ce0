/** Reads an action's action.yml: its inputs, outputs and how the runner starts it. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';

export interface ActionInput {
  description: string;
  required: boolean;
  default: string | undefined;
}

export interface ActionDefinition {
  dir: string;
  name: string;
  description: string;
  inputs: Record<string, ActionInput>;
  outputs: Record<string, { description: string }>;
  runs: {
    using: string;
    main: string;
    pre?: string;
    post?: string;
    'pre-if'?: string;
    'post-if'?: string;
  };
}

function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

/** A description as written, trimmed; '' when there is none. */
function description(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

export async function readActionYml(dir: string): Promise<ActionDefinition> {
  const file = path.join(dir, 'action.yml');
  const doc = parse(await readFile(file, 'utf8')) as Record<string, unknown> | null;
  if (!doc || typeof doc !== 'object') fail(file, 'is not a YAML mapping');
  const runs = doc.runs as ActionDefinition['runs'] | undefined;
  if (!runs || typeof runs.main !== 'string') fail(file, 'has no runs.main');
  if (!/^node\d+$/.test(runs.using)) fail(file, `runs.using ${runs.using} is not a node runtime`);

  const inputs: Record<string, ActionInput> = {};
  for (const [name, raw] of Object.entries((doc.inputs ?? {}) as Record<string, unknown>)) {
    const spec = (raw ?? {}) as Record<string, unknown>;
    const def = spec.default;
    inputs[name] = {
      description: description(spec.description),
      required: spec.required === true,
      // The runner hands every default over as a string (YAML 5 and true become "5", "true").
      default:
        def === undefined || def === null
          ? undefined
          : typeof def === 'string'
            ? def
            : JSON.stringify(def),
    };
  }
  const outputs: Record<string, { description: string }> = {};
  for (const [name, raw] of Object.entries((doc.outputs ?? {}) as Record<string, unknown>)) {
    const spec = (raw ?? {}) as Record<string, unknown>;
    outputs[name] = { description: description(spec.description) };
  }
  return {
    dir,
    name: typeof doc.name === 'string' ? doc.name : path.basename(dir),
    description: description(doc.description),
    inputs,
    outputs,
    runs,
  };
}
