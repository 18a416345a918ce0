/**
 * Errors a user can act on. Their message is one line that says what was wrong and
 * what was expected; the action entries and the CLI print it as is (no stack trace)
 * and exit with code 1. Anything else is a bug and is shown with its stack.
 */
export class DisklessError extends Error {
  override name = 'DisklessError';
}

/** A runner input or CLI flag that is missing or malformed. */
export class InputError extends DisklessError {
  override name = 'InputError';
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Replaces every secret value in `text` with ***, as the runner's log does. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.filter((s) => s !== '').reduce((out, s) => out.split(s).join('***'), text);
}

/** How the one line about a bad or missing input is worded. */
export interface Wording {
  /** `got` is the value as shown (quoted, or masked). */
  bad(input: string, got: string, expected: string): string;
  missing(input: string, expected: string): string;
}

/** The one shape of a bad input's message: `Input "name": got <value>; expected <what>`. */
export const inputWording: Wording = {
  bad: (input, got, expected) => `Input "${input}": got ${got}; expected ${expected}`,
  missing: (input, expected) => `Input "${input}" is required: expected ${expected}`,
};

export function inputError(input: string, got: unknown, expected: string): InputError {
  return new InputError(input, inputWording.bad(input, JSON.stringify(got), expected));
}
