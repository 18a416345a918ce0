/**
 * How the library talks to whoever runs it. The action entries back this with
 * @actions/core (log groups, annotations), the CLI with stderr; tests collect it.
 */
import { DisklessError } from './errors.js';

export interface Reporter {
  info(message: string): void;
  warning(message: string, where?: { file?: string; line?: number }): void;
  debug(message: string): void;
  /** Runs `work` inside a collapsible log group named `name`. */
  group<T>(name: string, work: () => Promise<T>): Promise<T>;
}

/**
 * Log groups that time themselves: `phase(key, title, work)` runs `work` in the group
 * `title` and adds its duration to `seconds[key]`, for the summary's time per phase.
 */
export function timedPhases(reporter: Reporter): {
  seconds: Record<string, number>;
  phase: <T>(key: string, title: string, work: () => Promise<T>) => Promise<T>;
} {
  const seconds: Record<string, number> = {};
  return {
    seconds,
    async phase(key, title, work) {
      const started = performance.now();
      try {
        return await reporter.group(title, work);
      } finally {
        seconds[key] = (seconds[key] ?? 0) + (performance.now() - started) / 1000;
      }
    },
  };
}

/**
 * A reporter for work that runs beside other work: it keeps the lines, and `replay`
 * prints them later in one piece, so concurrent steps do not interleave their logs.
 */
export function deferredReporter(): { reporter: Reporter; replay(to: Reporter): void } {
  const lines: [kind: 'info' | 'warning' | 'debug', message: string][] = [];
  return {
    reporter: {
      info: (m) => lines.push(['info', m]),
      warning: (m) => lines.push(['warning', m]),
      debug: (m) => lines.push(['debug', m]),
      group: (_name, work) => work(),
    },
    replay(to) {
      for (const [kind, message] of lines.splice(0)) to[kind](message);
    },
  };
}

/** A byte count for people: 512 B, 3.0 MiB, 1.2 GiB. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u] ?? 'B'}`;
}

/** A value an action publishes as an output and the CLI prints as `name=value`. */
export type OutputValue = string | number | boolean;

/**
 * What a finished step hands back to its runner: outputs and a summary table. `O` is
 * the step's declared outputs (src/inputs/outputs.ts); runners see any step's.
 */
export interface StepReport<O extends Record<string, OutputValue> = Record<string, OutputValue>> {
  outputs: O;
  /** Rows of the job summary: label, value. */
  summary: [string, string][];
}

/**
 * A step that failed after it changed something: the failure line, and the outputs and
 * summary that say what it did before (published before the step is marked failed).
 */
export class StepFailure extends DisklessError {
  override name = 'StepFailure';
  constructor(
    message: string,
    readonly report: StepReport,
  ) {
    super(message);
  }
}

/**
 * A reporter that prints to a stream, for the CLI and local runs; lines inside a group
 * are indented two spaces a level unless `indentGroups` is false.
 */
export function streamReporter(
  write: (line: string) => void,
  debug = false,
  indentGroups = true,
): Reporter {
  let depth = 0;
  const indent = () => (indentGroups ? '  '.repeat(depth) : '');
  return {
    info: (message) => {
      write(`${indent()}${message}`);
    },
    warning: (message, where) => {
      write(`${indent()}warning: ${where?.file ? `${where.file}: ` : ''}${message}`);
    },
    debug: (message) => {
      if (debug) write(`${indent()}debug: ${message}`);
    },
    async group(name, work) {
      write(`${indent()}> ${name}`);
      depth += 1;
      try {
        return await work();
      } finally {
        depth -= 1;
      }
    },
  };
}

/** What a recording reporter kept. */
export interface RecordingReporter extends Reporter {
  /** Every line as streamReporter shows it: messages, `warning: ...`, `> group`. */
  readonly lines: string[];
  /** The warnings' messages alone. */
  readonly warnings: string[];
  /** The names of the groups opened, in order. */
  readonly groups: string[];
}

/**
 * A reporter that keeps what it is told, for tests, benchmarks and callers that want the
 * log as data. `onLine` sees each line as it comes; `indent` keeps streamReporter's
 * indentation inside groups (off: lines are as the step wrote them).
 */
export function recordingReporter(
  onLine?: (line: string) => void,
  o: { indent?: boolean; debug?: boolean } = {},
): RecordingReporter {
  const lines: string[] = [];
  const warnings: string[] = [];
  const groups: string[] = [];
  const shown = streamReporter(
    (line) => {
      lines.push(line);
      onLine?.(line);
    },
    o.debug,
    o.indent ?? false,
  );
  return {
    lines,
    warnings,
    groups,
    info: (message) => {
      shown.info(message);
    },
    debug: (message) => {
      shown.debug(message);
    },
    warning: (message, where) => {
      warnings.push(message);
      shown.warning(message, where);
    },
    group: (name, work) => {
      groups.push(name);
      return shown.group(name, work);
    },
  };
}

/** A reporter that drops everything, for library callers that want silence. */
export const silentReporter: Reporter = streamReporter(() => undefined);
