/**
 * The pipeline's steps, each with its inputs, its library function (`run`, which returns
 * the step's typed result) and the function that turns the result into its report. The
 * action entries and the CLI both run a step through this table (`start`, in the
 * environment they pass in), so a step has one set of inputs, one implementation and one
 * report, whoever starts it; tests and benchmarks read the typed result.
 */
import { bootTestInputs, bootTestOutputs } from './boot/options.js';
import { reportBootTest, runBootTest } from './boot/step.js';
import { readInputs, type Fields, type InputSchema, type Options } from './inputs/read.js';
import { buildIsoInputs, buildIsoOutputs } from './iso/options.js';
import { buildIso, reportBuildIso } from './iso/build.js';
import type { OutputSchema, ReportOf } from './inputs/outputs.js';
import type { Env } from './env.js';
import type { Reporter, StepReport } from './report.js';
import { promoteInputs, promoteOutputs } from './releases/options.js';
import { promote, reportPromote } from './releases/promote.js';
import { rolloutInputs, rolloutOutputs } from './rollout/options.js';
import { rollout } from './rollout/rollout.js';
import { reportRollout } from './rollout/result.js';
import { buildRootfsInputs, buildRootfsOutputs } from './rootfs/options.js';
import { buildRootfs } from './rootfs/build.js';
import { reportBuildRootfs } from './rootfs/result.js';
import { uploadDriveInputs, uploadDriveOutputs } from './upload/options.js';
import { reportUploadDrive, upload } from './upload/upload.js';
import { uploadPveInputs, uploadPveOutputs } from './proxmox/options.js';
import { reportUploadPve, uploadPve } from './proxmox/step.js';

/** A step as its runners see it; `R` is its report with the outputs it declares. */
export interface Step<R extends StepReport = StepReport> {
  readonly name: string;
  readonly title: string;
  readonly inputs: InputSchema<Fields>;
  readonly outputs: OutputSchema;
  /**
   * Reads and validates the raw inputs through `get`, runs the step in `env` and turns
   * its result into the report (outputs and summary).
   */
  readonly start: (
    get: (name: string) => string | undefined,
    reporter: Reporter,
    env: Env,
  ) => Promise<R>;
}

/**
 * A step with its typed parts: `run` returns the step's result (the facts, typed), and
 * `report` turns a result into the outputs and summary rows the runners publish.
 */
export interface TypedStep<F extends Fields, O extends OutputSchema, T> extends Step<ReportOf<O>> {
  readonly run: (options: Options<F>, reporter: Reporter, env: Env) => Promise<T>;
  readonly report: (result: T) => ReportOf<O>;
}

function step<F extends Fields, const O extends OutputSchema, T>(s: {
  name: string;
  title: string;
  inputs: InputSchema<F>;
  outputs: O;
  run: (options: Options<F>, reporter: Reporter, env: Env) => Promise<T>;
  report: (result: T) => ReportOf<O>;
}): TypedStep<F, O, T> {
  return {
    ...s,
    inputs: s.inputs as InputSchema<Fields>,
    start: async (get, reporter, env) =>
      s.report(await s.run(readInputs(s.inputs, get), reporter, env)),
  };
}

export const steps = {
  'build-rootfs': step({
    name: 'build-rootfs',
    title: "Build the client root from the master's root",
    inputs: buildRootfsInputs,
    outputs: buildRootfsOutputs,
    run: buildRootfs,
    report: reportBuildRootfs,
  }),
  'build-iso': step({
    name: 'build-iso',
    title: 'Build the bootable ISO',
    inputs: buildIsoInputs,
    outputs: buildIsoOutputs,
    run: buildIso,
    report: reportBuildIso,
  }),
  'upload-drive': step({
    name: 'upload-drive',
    title: 'Upload the image to the shared drive',
    inputs: uploadDriveInputs,
    outputs: uploadDriveOutputs,
    run: upload,
    report: reportUploadDrive,
  }),
  'upload-pve': step({
    name: 'upload-pve',
    title: 'Upload the image to a Proxmox VE storage',
    inputs: uploadPveInputs,
    outputs: uploadPveOutputs,
    run: uploadPve,
    report: reportUploadPve,
  }),
  'boot-test': step({
    name: 'boot-test',
    title: 'Boot the ISO in QEMU against its release over NFS',
    inputs: bootTestInputs,
    outputs: bootTestOutputs,
    run: runBootTest,
    report: reportBootTest,
  }),
  promote: step({
    name: 'promote',
    title: 'Make a tested release current, or roll back',
    inputs: promoteInputs,
    outputs: promoteOutputs,
    run: promote,
    report: reportPromote,
  }),
  rollout: step({
    name: 'rollout',
    title: 'Get the servers onto a new boot drive, batch by batch, or back',
    inputs: rolloutInputs,
    outputs: rolloutOutputs,
    run: rollout,
    report: reportRollout,
  }),
} satisfies Record<string, Step>;

export type StepName = keyof typeof steps;

export function isStepName(name: string): name is StepName {
  return Object.hasOwn(steps, name);
}
