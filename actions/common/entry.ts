/**
 * The entry of the one bundle (dist/bundle) that every action and the CLI share. The
 * build writes each action's dist/index.js as a call of `runAction` with its step's name,
 * and dist/cli/index.js as a call of `cli`, so one copy of the code serves them all.
 */
import { isStepName, steps } from '../../src/steps.js';
import { runStep } from './run-step.js';

export { cli } from '../../src/cli/main.js';

/** Runs the step of the action named `name` the way the runner expects (see run-step.ts). */
export function runAction(name: string): Promise<void> {
  if (!isStepName(name)) throw new Error(`diskless: no step is named ${JSON.stringify(name)}`);
  return runStep(steps[name]);
}
