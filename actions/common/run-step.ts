/**
 * The one place where the actions talk to the runner: read and mask inputs, run the
 * library step, publish outputs and the job summary, and turn any error into a single
 * `core.setFailed` (exit code 1). Each action's generated dist/index.js calls this through
 * runAction in entry.ts.
 */
import { secretInputs } from '../../src/inputs/read.js';
import * as core from '@actions/core';
import { DisklessError, errorMessage, redact } from '../../src/errors.js';
import { StepFailure, type Reporter, type StepReport } from '../../src/report.js';
import type { Step } from '../../src/steps.js';

const coreReporter: Reporter = {
  info: (message) => {
    core.info(message);
  },
  warning: (message, where) => {
    core.warning(message, where?.file ? { file: where.file, startLine: where.line } : {});
  },
  debug: (message) => {
    core.debug(message);
  },
  group: (name, work) => core.group(name, work),
};

/** Summary cells and blocks are raw HTML: a path or message with < or & must not break it. */
function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Sets the outputs and writes the summary table (when run by a runner). */
async function publish(step: Step, report: StepReport): Promise<void> {
  for (const [name, value] of Object.entries(report.outputs)) core.setOutput(name, value);
  if (!process.env.GITHUB_STEP_SUMMARY) return; // run outside a runner: no summary file
  await core.summary
    .addHeading(`${step.name}: ${step.title}`, 3)
    .addTable([
      [
        { data: 'What', header: true },
        { data: 'Value', header: true },
      ],
      ...report.summary.map(([label, value]) => [html(label), html(value)]),
    ])
    .write();
}

export async function runStep(step: Step): Promise<void> {
  // Mask every credential before anything else can print, even a validation error.
  const secrets = secretInputs(step.inputs)
    .map((name) => core.getInput(name))
    .filter((value) => value !== '');
  for (const secret of secrets) core.setSecret(secret);

  try {
    const report = await step.start((name) => core.getInput(name), coreReporter, process.env);
    await publish(step, report);
  } catch (error) {
    const message = redact(errorMessage(error), secrets);
    // A step that failed half-way still says what it did (outputs and its table).
    if (error instanceof StepFailure) await publish(step, error.report);
    if (!(error instanceof DisklessError) && error instanceof Error && error.stack) {
      core.debug(redact(error.stack, secrets));
    }
    core.setFailed(message);
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addHeading(`${step.name}: failed`, 3).addCodeBlock(html(message)).write();
  }
}
