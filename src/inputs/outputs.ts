/**
 * Typed step outputs, declared once per step next to its inputs: each output's name,
 * type and description. The step's report is typed against the declaration (a missing
 * or misspelt output does not compile), callers read typed values, and a test keeps
 * action.yml's `outputs:` and the README tables in step with it.
 */
import type { StepReport } from '../report.js';

export interface OutputSpec {
  readonly type: 'string' | 'number' | 'boolean';
  /** What action.yml and the README say about the output. */
  readonly description: string;
}

export type OutputSchema = Readonly<Record<string, OutputSpec>>;

type TypeOf<T extends OutputSpec['type']> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : boolean;

/** The output values a schema declares, by their action.yml names. */
export type Outputs<S extends OutputSchema> = {
  -readonly [K in keyof S]: TypeOf<S[K]['type']>;
};

/** A step's report with the outputs its schema declares. */
export type ReportOf<S extends OutputSchema> = StepReport<Outputs<S>>;

export function defineOutputs<const S extends OutputSchema>(schema: S): S {
  return schema;
}
