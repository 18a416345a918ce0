/** A local emulator of the ElasticStack drive API, for tests, benchmarks and the CLI. */
export { startEmulator } from './server.js';
export { runEmulatorCommand } from './command.js';
export {
  DEFAULT_MAX_WRITE_BYTES,
  MAX_READ_BYTES,
  type Account,
  type Emulator,
  type EmulatorOptions,
  type EmulatorStats,
  type FaultKind,
  type Faults,
} from './options.js';
