/**
 * The ElasticStack emulator's state, one object per emulator: the stores, the fault
 * picker, the bandwidth link and the counters. The request handler (handle.ts), the drive
 * calls (drive-calls.ts) and the paced sender (send.ts) are functions over it.
 */
import { InputError } from '../errors.js';
import { Link } from './bandwidth.js';
import { DriveStore } from './drive-store.js';
import { FaultPicker } from './faults.js';
import { Imaging } from './imaging.js';
import {
  DEFAULT_IMAGING_BYTES_PER_SECOND,
  DEFAULT_MAX_WRITE_BYTES,
  type EmulatorOptions,
  type EmulatorStats,
  type Quirks,
} from './options.js';
import { ServerStore } from './server-store.js';

export interface EmulatorState {
  maxWriteBytes: number;
  /** API key by user. */
  keys: Map<string, string>;
  quirks: Quirks;
  store: DriveStore;
  imaging: Imaging;
  servers: ServerStore;
  /** Drives with a write in progress (for the one-writer quirk). */
  writing: Set<string>;
  picker: FaultPicker;
  stats: EmulatorStats;
  link: Link;
}

function checkOptions(o: EmulatorOptions): void {
  for (const a of o.accounts) {
    if (a.user === '' || /[:\s]/.test(a.user) || a.key === '') {
      throw new InputError(
        'accounts',
        `Invalid emulator account ${JSON.stringify(a.user)}: expected a user without ":" or spaces and a non-empty key`,
      );
    }
  }
  const max = o.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new InputError(
      'maxWriteBytes',
      `Invalid maxWriteBytes ${max}: expected a positive integer`,
    );
  }
  const rate = o.imagingBytesPerSecond ?? DEFAULT_IMAGING_BYTES_PER_SECOND;
  if (!(rate > 0)) {
    throw new InputError(
      'imagingBytesPerSecond',
      `Invalid imagingBytesPerSecond ${rate}: expected a positive number`,
    );
  }
}

/** Checks the options and opens the stores under options.dataDir. */
export async function openState(options: EmulatorOptions): Promise<EmulatorState> {
  checkOptions(options);
  const store = await DriveStore.open(options.dataDir, options.fsync ?? false);
  const imaging = new Imaging(
    store,
    options.imagingBytesPerSecond ?? DEFAULT_IMAGING_BYTES_PER_SECOND,
  );
  const servers = await ServerStore.open(options.dataDir, store, imaging, options.runner);
  const picker = new FaultPicker(options.faults ?? {});
  return {
    maxWriteBytes: options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES,
    keys: new Map(options.accounts.map((a) => [a.user, a.key])),
    quirks: options.quirks ?? {},
    store,
    imaging,
    servers,
    writing: new Set<string>(),
    picker,
    stats: {
      requests: 0,
      endpoints: {},
      statuses: {},
      faults: { error: 0, throttle: 0, busy: 0, cut: 0 },
      bytesReceived: 0,
      bytesSent: 0,
      bytesWritten: 0,
      connections: 0,
    },
    link: new Link(() => ({
      link: picker.current.linkBytesPerSecond,
      connection: picker.current.connectionBytesPerSecond,
    })),
  };
}
