/**
 * Proxmox VE as a target, shaped for the rollout's provider interface (wired in by the
 * fleet code; this folder does not import it): ship an image as a new artifact, list
 * the VMs and what their CD-ROMs hold, repoint a CD with the config digest, restart,
 * read state and address, and what is in use; retention of old artifacts.
 */
export { PveApi, TOKEN_ID, type PveApiOptions } from './api.js';
export { PveApiError, isTransientPve } from './api-error.js';
export { normalizeFingerprint, type PveTls } from './tls.js';
export { waitTask, upidNode, type TaskStatus, type WaitOptions } from './tasks.js';
export {
  artifactName,
  listIsos,
  uploadIsoImage,
  type PveUploadOptions,
  type PveUploadResult,
} from './upload.js';
export {
  cdDrives,
  isosInUse,
  listVms,
  readConfig,
  repointCd,
  restartVm,
  vmState,
  type CdDrive,
  type PveVm,
  type VmConfig,
  type VmState,
} from './vms.js';
export { pruneFamily, type PruneOptions, type PruneResult } from './retention.js';
