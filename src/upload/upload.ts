import { NotBuiltError } from '../errors.js';
import type { Reporter, StepReport } from '../report.js';
import type { UploadDriveOptions } from './options.js';

/** Uploads an image to a shared ElasticStack drive, sending only what the drive lacks. */
export function uploadDrive(
  _options: UploadDriveOptions,
  _reporter: Reporter,
): Promise<StepReport> {
  return Promise.reject(new NotBuiltError('upload-drive', 3));
}
