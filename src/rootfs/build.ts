import { NotBuiltError } from '../errors.js';
import type { Reporter, StepReport } from '../report.js';
import type { BuildRootfsOptions } from './options.js';

/** Builds a client root release from the master's root. */
export function buildRootfs(
  _options: BuildRootfsOptions,
  _reporter: Reporter,
): Promise<StepReport> {
  return Promise.reject(new NotBuiltError('build-rootfs', 4));
}
