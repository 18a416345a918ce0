/** A local ElasticStack cloud (drives, servers, the image call), for tests, benchmarks and the CLI. */
export { startEmulator } from './server.js';
export { runEmulatorCommand } from './command.js';
export {
  DEFAULT_MAX_WRITE_BYTES,
  QUIRK_NAMES,
  RECORDED_QUIRKS,
  type Quirks,
  MAX_READ_BYTES,
  type Account,
  type Emulator,
  type EmulatorOptions,
  type EmulatorStats,
  type FaultKind,
  type Faults,
} from './options.js';
export type { BootSpec, RunningServer, ServerRunner } from './server-runner.js';
