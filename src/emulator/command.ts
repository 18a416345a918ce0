/**
 * `diskless emulator`: runs the local ElasticStack cloud until SIGINT or SIGTERM. Prints
 * `url=<base url>` as the first stdout line, then one `account=` line per account (the
 * key only for an account it made up, since a given key is already known to the
 * caller), so scripts can read where to connect.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { InputError } from '../errors.js';
import { flagHelp, flagWording, readFlags } from '../cli/flags.js';
import { given, KIND_DESCRIPTION, kindFlag, mbitFlag } from './flags.js';
import {
  bool,
  byteSize,
  choice,
  custom,
  decimal,
  each,
  FieldError,
  filePath,
  text,
} from '../inputs/fields.js';
import { defineInputs, readInputs, type Options } from '../inputs/read.js';
import { FAULT_RATES, totalRate } from './faults.js';
import {
  RECORDED_QUIRKS,
  type Account,
  type EmulatorOptions,
  type Faults,
  type Quirks,
} from './options.js';
import type { QemuRunnerOptions } from './qemu-runner.js';
import {
  checkRunnerFlags,
  RUNNER_FLAGS,
  runnerDescriptions,
  runnerFields,
  runnerLines,
  runnerOptions,
  startWithRunner,
} from './runner-flags.js';
import { startEmulator } from './server.js';
import { commandFailed, serveUntilStopped } from './serve.js';
import { runPveEmulatorCommand } from './pve/command.js';

/** The quirks by their command-line names. */
const QUIRK_FLAGS: Record<string, keyof Quirks> = {
  'string-counters': 'stringCounters',
  'omit-defaults': 'omitDefaults',
  'not-found-400': 'notFoundAs400',
  'service-write': 'serviceWrite',
  'one-writer': 'oneWriterPerDrive',
};

function parseQuirks(value: string): Quirks {
  if (value === 'recorded') return { ...RECORDED_QUIRKS };
  const quirks: Quirks = {};
  for (const name of value.split(',')) {
    const quirk = QUIRK_FLAGS[name.trim()];
    if (quirk === undefined) throw new FieldError();
    quirks[quirk] = true;
  }
  return quirks;
}

/** USER:KEY; a bad one is shown with its key masked. */
function parseAccount(v: string): Account {
  const colon = v.indexOf(':');
  if (colon <= 0 || colon === v.length - 1 || /\s/.test(v)) {
    const masked = v.slice(0, Math.max(colon, 0)) + (colon >= 0 ? ':***' : '');
    throw new FieldError(undefined, JSON.stringify(masked));
  }
  return { user: v.slice(0, colon), key: v.slice(colon + 1) };
}

const rate = () => decimal({ min: 0, max: 1, expected: 'a share from 0 to 1, e.g. 0.05' });

/** The flags of `diskless emulator` (ElasticStack): what --help prints and how each is read. */
export const emulatorFlags = defineInputs(
  {
    kind: kindFlag,
    data: filePath({
      required: true,
      expected: 'the directory holding the drives',
    }),
    port: decimal({
      min: 0,
      max: 65535,
      whole: true,
      default: '0',
      expected: 'a port from 0 to 65535',
    }),
    host: text({
      expected: 'an address to listen on, e.g. 127.0.0.1',
    }),
    account: each(custom({ expected: 'USER:KEY, both non-empty, no spaces' }, parseAccount), {}),
    'latency-ms': decimal({
      min: 0,
      expected: 'milliseconds, 0 or more',
    }),
    'connection-mbit': mbitFlag(),
    'link-mbit': mbitFlag(),
    'error-rate': rate(),
    'throttle-rate': rate(),
    'busy-rate': rate(),
    'cut-rate': rate(),
    'retry-after': decimal({
      min: 0,
      whole: true,
      expected: 'whole seconds, 0 or more',
    }),
    'fault-on': choice(['writes', 'all'], {
      expected: 'writes or all',
    }),
    seed: decimal({
      min: 0,
      max: 2 ** 32 - 1,
      whole: true,
      expected: 'an integer from 0 to 4294967295',
    }),
    'max-write-bytes': byteSize({
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      expected: 'a byte size such as 64M or 4194304',
    }),
    fsync: bool({ default: 'false' }),
    quirks: custom(
      {
        expected: `recorded or a comma-separated list of ${Object.keys(QUIRK_FLAGS).join(', ')}`,
      },
      parseQuirks,
    ),
    'imaging-mbit': mbitFlag(),
    ...runnerFields,
  },
  (o) => {
    const rates = totalRate(faultsOf(o));
    if (rates > 1)
      throw new InputError(
        'error-rate',
        `The fault rates add up to ${rates}: expected at most 1 in all`,
      );
    checkRunnerFlags(o);
  },
  {
    kind: KIND_DESCRIPTION,
    data: 'directory holding the drives (reused across runs)',
    port: 'TCP port, 0 for any free one',
    host: 'address to listen on (default 127.0.0.1)',
    account: 'an account USER:KEY; by default one random account',
    'latency-ms': 'delay added before every response, ms',
    'connection-mbit': 'bandwidth cap per connection, Mbit/s',
    'link-mbit':
      'bandwidth cap shared by all connections, Mbit/s (split evenly between the transfers in progress)',
    'error-rate': 'share (0..1) of requests answered 500 system',
    'throttle-rate': 'share answered 429 with Retry-After',
    'busy-rate': 'share answered 409 busy',
    'cut-rate':
      'share whose connection is reset half-way through the body (a raw write keeps the part that arrived)',
    'retry-after': 'Retry-After seconds of throttled answers (default 1)',
    'fault-on': 'writes (default) or all: which requests get those faults',
    seed: 'seed of the fault PRNG',
    'max-write-bytes': 'largest write accepted, decompressed (default 64M)',
    fsync: 'fsync every write before acknowledging it',
    quirks: `the real service's recorded behaviour: "recorded" (all of them) or a comma-separated list of ${Object.keys(QUIRK_FLAGS).join(', ')}`,
    'imaging-mbit': "speed of the image call's server-side copy (default 2048)",
    ...runnerDescriptions,
  },
);

type EmulatorFlags = Options<typeof emulatorFlags.fields>;

function faultsOf(o: EmulatorFlags): Faults {
  const mbit = (n: number | undefined) => (n === undefined ? undefined : n * 125_000);
  return given({
    latencyMs: o.latencyMs,
    connectionBytesPerSecond: mbit(o.connectionMbit),
    linkBytesPerSecond: mbit(o.linkMbit),
    [FAULT_RATES.error]: o.errorRate,
    [FAULT_RATES.throttle]: o.throttleRate,
    [FAULT_RATES.busy]: o.busyRate,
    [FAULT_RATES.cut]: o.cutRate,
    retryAfterSeconds: o.retryAfter,
    faultOn: o.faultOn,
    seed: o.seed,
  });
}

export const EMULATOR_USAGE = `usage: diskless emulator --data DIR [flags]

Runs a local ElasticStack cloud (drives, servers, the image call) until SIGINT or SIGTERM.
With --kind proxmox, a Proxmox VE API instead (see diskless emulator --kind proxmox --help).

${flagHelp(
  emulatorFlags.fields,
  Object.keys(emulatorFlags.fields).filter((n) => !RUNNER_FLAGS.includes(n)),
  18,
)}

Servers are state only unless --run-servers: then each started server is a QEMU machine
booting its CD (the drive's file, read-only) against an NFS server on this machine
(nfs-ganesha in a private namespace; needs root, the boot test's Debian packages and
dnsmasq-base). Servers get their nic:0:dhcp:ip by DHCP on a network of their own,
10.213.N.0/24 (printed as network=), which this machine reaches at .254.
${flagHelp(emulatorFlags.fields, RUNNER_FLAGS, 18)}`;

/** The --kind flag's value (elasticstack when absent), read as the flag layer reads it. */
function emulatorKind(args: string[]): string {
  let raw: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--kind') raw = args[i + 1] ?? '';
    else if (a.startsWith('--kind=')) raw = a.slice('--kind='.length);
  }
  return readInputs(defineInputs({ kind: kindFlag }), () => raw, flagWording).kind;
}

/** The command line as emulator options; `generated` is the made-up account, if any. */
export function parseEmulatorArgs(args: string[]): {
  options: EmulatorOptions;
  generated: Account | undefined;
  /** With --run-servers: the QEMU runner to start. */
  runner: QemuRunnerOptions | undefined;
} {
  const o = readFlags(emulatorFlags, args);
  const runner = runnerOptions(o, o.data);
  const accounts = [...o.account];
  let generated: Account | undefined;
  if (accounts.length === 0) {
    generated = { user: randomUUID(), key: randomBytes(18).toString('base64url') };
    accounts.push(generated);
  }
  return {
    options: {
      dataDir: o.data,
      host: o.host,
      port: o.port,
      accounts,
      faults: faultsOf(o),
      maxWriteBytes: o.maxWriteBytes,
      fsync: o.fsync,
      quirks: o.quirks,
      imagingBytesPerSecond: o.imagingMbit === undefined ? undefined : o.imagingMbit * 125_000,
    },
    generated,
    runner,
  };
}

/**
 * Runs the emulator until SIGINT/SIGTERM (or `stop` aborts, for tests); returns the
 * exit code. Bad flags print one line on stderr and return 1.
 */
export async function runEmulatorCommand(args: string[], stop?: AbortSignal): Promise<number> {
  let kind: string;
  try {
    kind = emulatorKind(args);
  } catch (error) {
    return commandFailed(error);
  }
  if (kind === 'proxmox') return runPveEmulatorCommand(args, stop);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EMULATOR_USAGE);
    return 0;
  }
  try {
    const { options, generated, runner } = parseEmulatorArgs(args);
    const { emulator, qemu } = await startWithRunner(runner, (qemu) =>
      startEmulator({ ...options, runner: qemu }),
    );
    return await serveUntilStopped(
      emulator,
      () => {
        console.log(`url=${emulator.url}`);
        for (const line of runnerLines(runner, qemu)) console.log(line);
        for (const a of options.accounts) {
          console.log(a === generated ? `account=${a.user}:${a.key}` : `account=${a.user}`);
        }
      },
      stop,
    );
  } catch (error) {
    return commandFailed(error);
  }
}
