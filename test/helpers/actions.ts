import { expect } from 'vitest';
import type { ActionRun } from '../../src/harness/run-action.js';

/** The one error annotation a failed action run wrote (the step's one failure line). */
export function failureLine(run: ActionRun): string {
  const errors = run.main.annotations.filter((a) => a.level === 'error');
  expect(errors).toHaveLength(1);
  return errors[0]?.message ?? '';
}

/** Everything the action printed except the ::add-mask:: command that registers a secret. */
export function everythingShown(run: ActionRun): string {
  const stdout = run.main.stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n');
  return [stdout, run.main.stderr, run.summary, JSON.stringify(run.outputs)].join('\n');
}
