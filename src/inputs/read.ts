/**
 * Turns raw inputs (from the runner, CLI flags or a test) into one validated, typed
 * options object per action. Field names are the kebab-case input names of action.yml;
 * the options object uses their camelCase form.
 */
import { InputError, inputWording, type Wording } from '../errors.js';
import { FieldError, showValue, type Field } from './fields.js';

export { showValue };

export type Fields = Record<string, Field<unknown>>;

type Camel<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<Camel<T>>}`
  : S;

export type Options<F extends Fields> = {
  [K in keyof F & string as Camel<K>]: F[K] extends Field<infer T> ? T : never;
};

/** What each input is for: action.yml, the README and --help say it (tests keep them equal). */
export type Descriptions<F extends Fields> = { readonly [K in keyof F]: string };

export interface InputSchema<F extends Fields> {
  readonly fields: F;
  /** Rules across inputs (one of two required, ...); throws InputError. */
  readonly check?: (options: Options<F>) => void;
}

/**
 * A step's (or command's) inputs. `descriptions`, one for every field (a missing or
 * misspelt one does not compile), become the fields' descriptions.
 */
export function defineInputs<F extends Fields>(
  fields: F,
  check?: (options: Options<F>) => void,
  descriptions?: Descriptions<F>,
): InputSchema<F> {
  const described = descriptions
    ? (Object.fromEntries(
        Object.entries(fields).map(([name, f]) => [
          name,
          { ...f, description: descriptions[name as keyof F] },
        ]),
      ) as F)
    : fields;
  return check ? { fields: described, check } : { fields: described };
}

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * One raw value of the input `name` through its field; a bad one throws the one line.
 * A parsed value is never undefined (only an empty input is).
 */
export function readValue<T>(
  name: string,
  field: Field<T>,
  raw: string,
  wording: Wording = inputWording,
): NonNullable<T> {
  try {
    return field.parse(raw) as NonNullable<T>;
  } catch (error) {
    if (!(error instanceof FieldError)) throw error;
    const got = error.got ?? showValue(raw, field.secret);
    throw new InputError(name, wording.bad(name, got, error.message || field.expected));
  }
}

/**
 * Reads every field through `get` (which returns the raw string, '' or undefined when
 * unset). A bad value throws an InputError whose one-line message names the input, the
 * value and what was expected, in `wording` (the steps' `Input "name": got ...` unless
 * a command words it as flags).
 */
export function readInputs<F extends Fields>(
  schema: InputSchema<F>,
  get: (name: string) => string | undefined,
  wording: Wording = inputWording,
): Options<F> {
  const options: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.fields)) {
    const given = (get(name) ?? '').trim();
    const raw = given === '' ? (field.default ?? '') : given;
    if (raw === '') {
      if (field.required) {
        throw new InputError(name, wording.missing(name, field.expected));
      }
      options[camelCase(name)] = field.empty();
      continue;
    }
    options[camelCase(name)] = readValue(name, field, raw, wording);
  }
  const typed = options as Options<F>;
  schema.check?.(typed);
  return typed;
}

/** Names of the fields that hold credentials. */
export function secretInputs(schema: InputSchema<Fields>): string[] {
  return Object.entries(schema.fields)
    .filter(([, field]) => field.secret)
    .map(([name]) => name);
}
