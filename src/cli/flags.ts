/**
 * Command-line flags for a step: `--name value`, `--name=value`, `--flag` / `--no-flag`
 * for booleans, a repeated flag for a multi-line input; any input may also come from
 * the environment as DISKLESS_<NAME> (the way to pass a credential without it showing
 * in `ps`). The raw strings then go through the same readInputs as the runner's. The
 * emulator and `diskless action` commands use the same layer for their own flags.
 */
import { InputError, type Wording } from '../errors.js';
import { readInputs, type Fields, type InputSchema, type Options } from '../inputs/read.js';

/**
 * The emulator commands' wording of the one line about a bad flag (kept from before they
 * moved onto this layer): `Invalid --name "value": expected ...`.
 */
export const flagWording: Wording = {
  bad: (input, got, expected) => `Invalid --${input} ${got}: expected ${expected}`,
  missing: (input, expected) => `Flag --${input} is required: expected ${expected}`,
};

/** Flags that are not inputs, with what --help says of them. */
export const SWITCHES = {
  json: 'print the outputs as one JSON object',
  debug: 'show debug lines',
  help: 'show this help',
} as const;

/** --help lines for switches, aligned with flagHelp's. */
export function switchHelp(names: (keyof typeof SWITCHES)[], pad = 16): string {
  return names.map((name) => `  --${name.padEnd(pad)} ${SWITCHES[name]}`).join('\n');
}

/**
 * One line of --help per field: its description (else what it expects), then required,
 * default, repeatable and, for a credential, the variable to prefer.
 */
export function flagHelp(fields: Fields, names: string[] = Object.keys(fields), pad = 16): string {
  return names
    .map((name) => {
      const f = fields[name];
      if (!f) throw new Error(`flagHelp: no field ${name}`);
      const extra = [
        f.required ? 'required' : undefined,
        f.default !== undefined ? `default ${f.default}` : undefined,
        f.multiline ? 'repeatable' : undefined,
        f.secret ? `prefer ${envName(name)}` : undefined,
      ].filter(Boolean);
      const text = `${f.description ?? f.expected}${extra.length ? ` (${extra.join(', ')})` : ''}`;
      const column = pad + 5;
      const lines = wrap(text, HELP_WIDTH - column).map((l) => `${' '.repeat(column)}${l}`);
      const head = `  --${name}`;
      // The first line beside the name when the name fits its column, else below it.
      if (head.length < column)
        return [`${head.padEnd(column)}${lines.shift()?.trimStart() ?? ''}`, ...lines];
      return [head, ...lines];
    })
    .flat()
    .join('\n');
}

const HELP_WIDTH = 96;

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

export function envName(input: string): string {
  return `DISKLESS_${input.toUpperCase().replace(/-/g, '_')}`;
}

export interface ParsedFlags {
  raw: Map<string, string[]>;
  /** Flags that are not inputs (`--json`, `--debug`). */
  switches: Set<string>;
}

/** `aliases` maps a short spelling (`-i`) to a flag's name (`input`). */
export function parseFlags(
  args: string[],
  fields: Fields,
  switches: string[],
  aliases: Record<string, string> = {},
): ParsedFlags {
  const raw = new Map<string, string[]>();
  const on = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const given = args[i] ?? '';
    const alias = aliases[given];
    const arg = alias === undefined ? given : `--${alias}`;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m)
      throw new InputError(
        arg,
        `Unexpected argument ${JSON.stringify(arg)}: expected --name value`,
      );
    const [, flag = '', inline] = m;
    if (switches.includes(flag) && inline === undefined) {
      on.add(flag);
      continue;
    }
    const negated =
      flag.startsWith('no-') && fields[flag.slice(3)]?.flag ? flag.slice(3) : undefined;
    const name = negated ?? flag;
    const field = fields[name];
    if (!field) {
      const known = Object.keys(fields)
        .map((n) => `--${n}`)
        .join(', ');
      throw new InputError(name, `Unknown flag --${flag}: expected one of ${known}`);
    }
    let value: string;
    if (negated) value = 'false';
    else if (inline !== undefined) value = inline;
    else if (field.flag && (args[i + 1] === undefined || args[i + 1]?.startsWith('--')))
      value = 'true';
    else if (args[i + 1] === undefined) {
      throw new InputError(name, `Flag --${name} needs a value: expected ${field.expected}`);
    } else value = args[++i] ?? '';
    raw.set(name, [...(raw.get(name) ?? []), value]);
  }
  return { raw, switches: on };
}

/**
 * The raw value of an input: its flags (for a multi-line input, every repeat is a line;
 * otherwise the last one wins), else DISKLESS_<NAME>.
 */
export function flagSource(
  parsed: ParsedFlags,
  fields: Fields,
  env: NodeJS.ProcessEnv,
): (name: string) => string | undefined {
  return (name) => {
    const given = parsed.raw.get(name);
    if (!given) return env[envName(name)];
    return fields[name]?.multiline ? given.join('\n') : given.at(-1);
  };
}

/** Reads a command's flags through the flag layer, worded as flags; no environment. */
export function readFlags<F extends Fields>(schema: InputSchema<F>, args: string[]): Options<F> {
  const parsed = parseFlags(args, schema.fields, []);
  return readInputs(schema, flagSource(parsed, schema.fields, {}), flagWording);
}
