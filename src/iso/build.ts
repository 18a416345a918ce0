import { NotBuiltError } from '../errors.js';
import type { Reporter, StepReport } from '../report.js';
import type { BuildIsoOptions } from './options.js';

/** Builds the bootable ISO: client initramfs (cached), kernel, BIOS and UEFI loaders. */
export function buildIso(_options: BuildIsoOptions, _reporter: Reporter): Promise<StepReport> {
  return Promise.reject(new NotBuiltError('build-iso', 5));
}
