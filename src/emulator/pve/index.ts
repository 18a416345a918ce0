/** A local Proxmox VE front end (tokens, storages, ISO upload, tasks, VMs) for tests, benchmarks and the CLI. */
export { startPveEmulator } from './server.js';
export { certificateFingerprint } from './tls.js';
export type {
  PveEmulator,
  PveEmulatorOptions,
  PveEmulatorStats,
  PveStorage,
  PveToken,
  PveVmSpec,
} from './options.js';
