/**
 * Typed parsers for runner inputs. Each field knows how to turn the raw string the
 * runner (or a CLI flag) gives into a value, and how to say what it expected when it
 * cannot. Defaults are raw strings in the same notation a user would type, so the
 * action.yml defaults and these can be compared by a test.
 */
import path from 'node:path';

export interface Field<T> {
  /** Human description of an acceptable value, used in error messages and docs. */
  readonly expected: string;
  /**
   * What the input is for, given to defineInputs beside the fields (undefined until
   * then): action.yml, the README tables and --help say it.
   */
  readonly description: string | undefined;
  readonly required: boolean;
  /** Raw default, as written in action.yml; undefined when the input has none. */
  readonly default: string | undefined;
  /** A credential: masked before anything is logged, never echoed in errors. */
  readonly secret: boolean;
  /** Multi-line input: one value per line (CLI: the flag may be repeated). */
  readonly multiline: boolean;
  readonly flag: boolean;
  /** Turns a non-empty, trimmed raw value into T; throws FieldError when it cannot. */
  parse(raw: string): T;
  /** The value when the input is empty and has no default. */
  empty(): T;
}

/**
 * Thrown by a parser; readInputs turns it into an InputError naming the input and value.
 * The message, when given, replaces the field's `expected`; `got`, when given, is how the
 * bad value is shown instead of the whole raw value (one line of many, a masked part).
 */
export class FieldError extends Error {
  constructor(
    message?: string,
    readonly got?: string,
  ) {
    super(message);
  }
}

interface Common {
  required?: boolean;
  default?: string;
  secret?: boolean;
  expected?: string;
}

/** required or defaulted fields always have a value; the others may be undefined. */
type Out<T, O> = O extends { required: true }
  ? T
  : O extends { default: string }
    ? T
    : T | undefined;

// R is inferred from the builder's declared return type, which Out<> makes optional or not.
function field<R>(
  o: Common,
  expected: string,
  parse: (raw: string) => unknown,
  extra: { multiline?: boolean; flag?: boolean; empty?: () => unknown } = {},
): Field<R> {
  return {
    expected: o.expected ?? expected,
    description: undefined,
    required: o.required ?? false,
    default: o.default,
    secret: o.secret ?? false,
    multiline: extra.multiline ?? false,
    flag: extra.flag ?? false,
    parse: parse as (raw: string) => R,
    empty: (extra.empty ?? (() => undefined)) as () => R,
  };
}

/** How a raw value is shown in an error: quoted, shortened, never a secret or URL password. */
export function showValue(raw: string, secret: boolean): string {
  if (secret) return 'a value (hidden: it is a credential)';
  const clean = raw.replace(/(\/\/)[^/@\s]*@/g, '$1***@');
  const short = clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
  return JSON.stringify(short);
}

/** The same field, not required: a rule across inputs says when it is needed. */
export function optional<T>(f: Field<T>): Field<T | undefined> {
  return { ...f, required: false };
}

export function text<const O extends Common & { pattern?: RegExp }>(o: O): Field<Out<string, O>> {
  return field(o, o.pattern ? `a value matching ${String(o.pattern)}` : 'a value', (raw) => {
    if (o.pattern && !o.pattern.test(raw)) throw new FieldError();
    return raw;
  });
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function uuid<const O extends Common>(o: O): Field<Out<string, O>> {
  return field(o, 'a UUID like 0f2c4d8e-1b3a-4c5d-9e8f-a1b2c3d4e5f6', (raw) => {
    if (!UUID_PATTERN.test(raw)) throw new FieldError();
    return raw.toLowerCase();
  });
}

// The runner's own rules (core.getBooleanInput): the YAML 1.2 core schema spellings only.
const TRUE = ['true', 'True', 'TRUE'];
const FALSE = ['false', 'False', 'FALSE'];

export function bool(o: Omit<Common, 'required'> & { default: 'true' | 'false' }): Field<boolean> {
  return field(
    o,
    'one of true | True | TRUE | false | False | FALSE',
    (raw) => {
      if (TRUE.includes(raw)) return true;
      if (FALSE.includes(raw)) return false;
      throw new FieldError();
    },
    { flag: true },
  );
}

export function integer<const O extends Common & { min: number; max: number }>(
  o: O,
): Field<Out<number, O>> {
  return field(o, `a whole number from ${o.min} to ${o.max}`, (raw) => {
    if (!/^[+]?\d+$/.test(raw)) throw new FieldError();
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < o.min || n > o.max) throw new FieldError();
    return n;
  });
}

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses `4194304`, `4M`, `4MiB`, `1.5G` (binary units, as the ElasticStack API uses). */
export function parseByteSize(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(raw);
  if (!m) return undefined;
  const [, num = '', unit = ''] = m;
  const bytes = Number(num) * (UNITS[unit.toUpperCase()] ?? NaN);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function formatBytes(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const scale = UNITS[unit] ?? 1;
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}

export function byteSize<const O extends Common & { min: number; max: number }>(
  o: O,
): Field<Out<number, O>> {
  return field(
    o,
    `a byte size from ${formatBytes(o.min)} to ${formatBytes(o.max)} such as 4M or 4194304`,
    (raw) => {
      const n = parseByteSize(raw);
      if (n === undefined || n < o.min || n > o.max) throw new FieldError();
      return n;
    },
  );
}

export function choice<const C extends string, const O extends Common>(
  choices: readonly C[],
  o: O,
): Field<Out<C, O>> {
  return field(o, `one of ${choices.join(' | ')}`, (raw) => {
    if (!(choices as readonly string[]).includes(raw)) throw new FieldError();
    return raw;
  });
}

/**
 * A filesystem path. Relative paths resolve against the working directory (the
 * runner's is GITHUB_WORKSPACE) unless `absolute` demands an absolute one, as it does
 * for anything the tool may delete from.
 */
export function filePath<const O extends Common & { absolute?: boolean }>(
  o: O,
): Field<Out<string, O>> {
  return field(o, o.absolute ? 'an absolute path' : 'a path', (raw) => {
    if (raw.includes('\0')) throw new FieldError();
    if (o.absolute && !path.isAbsolute(raw)) throw new FieldError();
    return path.resolve(raw);
  });
}

export function httpUrl<const O extends Common>(o: O): Field<Out<string, O>> {
  return field(o, 'an http:// or https:// URL', (raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new FieldError();
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FieldError();
    if (url.username || url.password) {
      throw new FieldError('a URL without credentials in it (use api-user and api-key)');
    }
    return url.href;
  });
}

/** One value per line; blank lines and lines starting with `#` are ignored. */
export function list(
  o: { expected?: string; item?: (line: string) => boolean; default?: string } = {},
): Field<string[]> {
  const f: Field<string[]> = field(
    o,
    'one value per line',
    (raw) => {
      const items = raw
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
      for (const item of items) {
        if (o.item && !o.item(item)) {
          throw new FieldError(`${f.expected} (line ${JSON.stringify(item)} is not)`);
        }
      }
      return items;
    },
    { multiline: true, empty: () => [] },
  );
  return f;
}

/** A field with its own parser, for values no other builder covers. */
export function custom<T, const O extends Common = Common>(
  o: O & { expected: string },
  parse: (raw: string) => T,
): Field<Out<T, O>> {
  return field(o, o.expected, parse);
}

/**
 * A number as JavaScript reads it (`0.05`, `50`, `1e3`) within bounds: from `min`
 * (or above it, with `above`) to `max`; `whole` demands an integer.
 */
export function decimal<
  const O extends Common & { min: number; max?: number; above?: boolean; whole?: boolean },
>(o: O): Field<Out<number, O>> {
  const max = o.max ?? Infinity;
  return field(
    o,
    `${o.whole ? 'a whole number' : 'a number'} ${o.above ? 'above' : 'from'} ${o.min}${o.max === undefined ? '' : ` to ${o.max}`}`,
    (raw) => {
      const n = Number(raw);
      const low = o.above ? n > o.min : n >= o.min;
      if (!Number.isFinite(n) || !low || n > max || (o.whole && !Number.isInteger(n))) {
        throw new FieldError();
      }
      return n;
    },
  );
}

/**
 * A repeatable flag: one `item` value per line (each repeat of the flag is a line). A bad
 * line is shown alone, the way the item shows it. Lines are never empty, so neither are
 * the items.
 */
export function each<T>(item: Field<T>, o: { secret?: boolean } = {}): Field<NonNullable<T>[]> {
  return field(
    { expected: item.expected, secret: o.secret ?? item.secret },
    item.expected,
    (raw) =>
      raw
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '')
        .map((line) => {
          try {
            return item.parse(line);
          } catch (error) {
            if (!(error instanceof FieldError) || error.got !== undefined) throw error;
            // A secret item that does not mask its own value is hidden whole.
            throw new FieldError(error.message, showValue(line, item.secret));
          }
        }),
    { multiline: true, empty: () => [] },
  );
}
