/**
 * The pipeline's steps, each with its inputs and its library function. The action
 * entries and the CLI both run a step through this table, so a step has one set of
 * inputs, one implementation and one report, whoever starts it.
 */
import { bootTestInputs, bootTestOutputs } from './boot/options.js';
import { runBootTest } from './boot/step.js';
import { readInputs, type Fields, type InputSchema, type Options } from './inputs/read.js';
import { buildIsoInputs, buildIsoOutputs } from './iso/options.js';
import { buildIso } from './iso/build.js';
import type { OutputSchema, ReportOf } from './inputs/outputs.js';
import type { Reporter, StepReport } from './report.js';
import { promoteInputs, promoteOutputs } from './releases/options.js';
import { promote } from './releases/promote.js';
import { rolloutInputs, rolloutOutputs } from './rollout/options.js';
import { rollout } from './rollout/rollout.js';
import { buildRootfsInputs, buildRootfsOutputs } from './rootfs/options.js';
import { buildRootfs } from './rootfs/build.js';
import { uploadDriveInputs, uploadDriveOutputs } from './upload/options.js';
import { uploadDrive } from './upload/upload.js';
import { uploadPveInputs, uploadPveOutputs } from './proxmox/options.js';
import { uploadPve } from './proxmox/step.js';

/** A step; `R` is its report with the outputs it declares (any step's by default). */
export interface Step<R extends StepReport = StepReport> {
  readonly name: string;
  readonly title: string;
  readonly inputs: InputSchema<Fields>;
  readonly outputs: OutputSchema;
  /** Reads and validates the raw inputs through `get`, then runs the step. */
  readonly start: (get: (name: string) => string | undefined, reporter: Reporter) => Promise<R>;
}

function step<F extends Fields, const O extends OutputSchema>(s: {
  name: string;
  title: string;
  inputs: InputSchema<F>;
  outputs: O;
  run: (options: Options<F>, reporter: Reporter) => Promise<ReportOf<O>>;
}): Step<ReportOf<O>> {
  return {
    name: s.name,
    title: s.title,
    inputs: s.inputs as InputSchema<Fields>,
    outputs: s.outputs,
    start: (get, reporter) => s.run(readInputs(s.inputs, get), reporter),
  };
}

export const steps = {
  'build-rootfs': step({
    name: 'build-rootfs',
    title: "Build the client root from the master's root",
    inputs: buildRootfsInputs,
    outputs: buildRootfsOutputs,
    run: buildRootfs,
  }),
  'build-iso': step({
    name: 'build-iso',
    title: 'Build the bootable ISO',
    inputs: buildIsoInputs,
    outputs: buildIsoOutputs,
    run: buildIso,
  }),
  'upload-drive': step({
    name: 'upload-drive',
    title: 'Upload the image to the shared drive',
    inputs: uploadDriveInputs,
    outputs: uploadDriveOutputs,
    run: uploadDrive,
  }),
  'upload-pve': step({
    name: 'upload-pve',
    title: 'Upload the image to a Proxmox VE storage',
    inputs: uploadPveInputs,
    outputs: uploadPveOutputs,
    run: uploadPve,
  }),
  'boot-test': step({
    name: 'boot-test',
    title: 'Boot the ISO in QEMU against its release over NFS',
    inputs: bootTestInputs,
    outputs: bootTestOutputs,
    run: runBootTest,
  }),
  promote: step({
    name: 'promote',
    title: 'Make a tested release current, or roll back',
    inputs: promoteInputs,
    outputs: promoteOutputs,
    run: promote,
  }),
  rollout: step({
    name: 'rollout',
    title: 'Get the servers onto a new boot drive, batch by batch, or back',
    inputs: rolloutInputs,
    outputs: rolloutOutputs,
    run: rollout,
  }),
} satisfies Record<string, Step>;

export type StepName = keyof typeof steps;

export function isStepName(name: string): name is StepName {
  return Object.hasOwn(steps, name);
}
