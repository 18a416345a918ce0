/**
 * `diskless emulator`: runs the local ElasticStack cloud until SIGINT or SIGTERM. Prints
 * `url=<base url>` as the first stdout line, then one `account=` line per account (the
 * key only for an account it made up, since a given key is already known to the
 * caller), so scripts can read where to connect.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { InputError } from '../errors.js';
import { parseByteSize } from '../inputs/fields.js';
import { FAULT_RATES, totalRate } from './faults.js';
import {
  RECORDED_QUIRKS,
  type Account,
  type Emulator,
  type EmulatorOptions,
  type FaultKind,
  type Faults,
  type Quirks,
} from './options.js';
import { EXPORT_LINE } from '../boot/options.js';
import type { NfsExport } from '../boot/nfs.js';
import { slirpNetwork, type Firmware } from '../boot/qemu.js';
import { streamReporter } from '../report.js';
import { startQemuRunner, type QemuRunnerOptions } from './qemu-runner.js';
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
    if (quirk === undefined) {
      throw new InputError(
        'quirks',
        `Invalid --quirks ${JSON.stringify(value)}: expected recorded or a comma-separated list of ${Object.keys(QUIRK_FLAGS).join(', ')}`,
      );
    }
    quirks[quirk] = true;
  }
  return quirks;
}

export const EMULATOR_USAGE = `usage: diskless emulator --data DIR [flags]

Runs a local ElasticStack cloud (drives, servers, the image call) until SIGINT or SIGTERM.
With --kind proxmox, a Proxmox VE API instead (see diskless emulator --kind proxmox --help).

  --data DIR             directory holding the drives (required; reused across runs)
  --port N               TCP port, 0 for any free one (default 0)
  --host H               address to listen on (default 127.0.0.1)
  --account USER:KEY     an account (repeatable); by default one random account
  --latency-ms N         delay added before every response
  --connection-mbit N    bandwidth cap per connection, Mbit/s
  --link-mbit N          bandwidth cap shared by all connections, Mbit/s (split
                         evenly between the transfers in progress)
  --error-rate R         share (0..1) of requests answered 500 system
  --throttle-rate R      share answered 429 with Retry-After
  --retry-after N        Retry-After seconds of throttled answers (default 1)
  --busy-rate R          share answered 409 busy
  --cut-rate R           share whose connection is reset half-way through the body
                         (a raw write keeps the part that arrived)
  --fault-on WHICH       writes (default) or all: which requests get those faults
  --seed N               seed of the fault PRNG
  --max-write-bytes N    largest write accepted, decompressed (default 64M)
  --fsync                fsync every write before acknowledging it
  --quirks LIST          the real service's recorded behaviour: "recorded" (all of
                         them) or a comma-separated list of ${Object.keys(QUIRK_FLAGS).join(', ')}
  --imaging-mbit N       speed of the image call's server-side copy (default 2048)

Servers are state only unless --run-servers: then each started server is a QEMU machine
booting its CD (the drive's file, read-only) against an NFS server on this machine
(nfs-ganesha in a private namespace; needs root, the boot test's Debian packages and
dnsmasq-base). Servers get their nic:0:dhcp:ip by DHCP on a network of their own,
10.213.N.0/24 (printed as network=), which this machine reaches at .254.
  --run-servers          boot started servers in QEMU
  --nfs-export P=DIR     serve DIR at the NFS path P the clients mount (repeatable)
  --nfs-server IP        the NFS server's address in the CDs' nfsroot= (default 10.0.2.100)
  --firmware F           bios (default) or uefi
  --work DIR             consoles (DIR/consoles/<server>.log) and the NFS server's
                         files (default DATA/runner)`;

/** The --kind flag's value (elasticstack when absent). */
function emulatorKind(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--kind') return args[i + 1] ?? '';
    if (a.startsWith('--kind=')) return a.slice('--kind='.length);
  }
  return 'elasticstack';
}

function withoutKind(args: string[]): string[] {
  return args.filter(
    (a, i) => !a.startsWith('--kind=') && a !== '--kind' && args[i - 1] !== '--kind',
  );
}

function need(flag: string, value: string | undefined, expected: string): string {
  if (value === undefined || value.startsWith('--')) {
    throw new InputError(flag, `Flag --${flag} needs a value: expected ${expected}`);
  }
  return value;
}

function number(flag: string, value: string, expected: string, ok: (n: number) => boolean): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || !ok(n)) {
    throw new InputError(flag, `Invalid --${flag} ${JSON.stringify(value)}: expected ${expected}`);
  }
  return n;
}

/** The command line as emulator options; `generated` is the made-up account, if any. */
export function parseEmulatorArgs(args: string[]): {
  options: EmulatorOptions;
  generated: Account | undefined;
  /** With --run-servers: the QEMU runner to start. */
  runner: QemuRunnerOptions | undefined;
} {
  const faults: Faults = {};
  const accounts: Account[] = [];
  let dataDir: string | undefined;
  let host: string | undefined;
  let port = 0;
  let maxWriteBytes: number | undefined;
  let fsync = false;
  let runServers = false;
  let firmware: Firmware = 'bios';
  let nfsServer = '10.0.2.100';
  let work: string | undefined;
  const exports: NfsExport[] = [];
  let quirks: Quirks | undefined;
  let imagingBytesPerSecond: number | undefined;
  const rate = (f: string, v: string) =>
    number(f, v, 'a share from 0 to 1, e.g. 0.05', (n) => n >= 0 && n <= 1);
  const mbit = (f: string, v: string) =>
    number(f, v, 'a positive number of Mbit/s, e.g. 50', (n) => n > 0) * 125_000;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m)
      throw new InputError(
        arg,
        `Unexpected argument ${JSON.stringify(arg)}: expected --flag value (see --help)`,
      );
    const flag = m[1] ?? '';
    if (flag === 'fsync' || flag === 'run-servers') {
      if (flag === 'fsync') fsync = true;
      else runServers = true;
      continue;
    }
    const value = (expected: string) => m[2] ?? need(flag, args[++i], expected);
    switch (flag) {
      case 'data':
        dataDir = path.resolve(value('a directory'));
        break;
      case 'host':
        host = value('an address to listen on, e.g. 127.0.0.1');
        break;
      case 'port':
        port = number(
          flag,
          value('a port'),
          'a port from 0 to 65535',
          (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
        );
        break;
      case 'account': {
        const v = value('USER:KEY');
        const colon = v.indexOf(':');
        if (colon <= 0 || colon === v.length - 1 || /\s/.test(v)) {
          throw new InputError(
            flag,
            `Invalid --account ${JSON.stringify(v.slice(0, Math.max(colon, 0)) + (colon >= 0 ? ':***' : ''))}: expected USER:KEY, both non-empty, no spaces`,
          );
        }
        accounts.push({ user: v.slice(0, colon), key: v.slice(colon + 1) });
        break;
      }
      case 'latency-ms':
        faults.latencyMs = number(
          flag,
          value('milliseconds'),
          'milliseconds, 0 or more',
          (n) => n >= 0,
        );
        break;
      case 'connection-mbit':
        faults.connectionBytesPerSecond = mbit(flag, value('Mbit/s'));
        break;
      case 'link-mbit':
        faults.linkBytesPerSecond = mbit(flag, value('Mbit/s'));
        break;
      case 'error-rate':
      case 'throttle-rate':
      case 'busy-rate':
      case 'cut-rate':
        faults[FAULT_RATES[flag.slice(0, -'-rate'.length) as FaultKind]] = rate(
          flag,
          value('a share'),
        );
        break;
      case 'retry-after':
        faults.retryAfterSeconds = number(
          flag,
          value('seconds'),
          'whole seconds, 0 or more',
          (n) => Number.isInteger(n) && n >= 0,
        );
        break;
      case 'fault-on': {
        const v = value('writes or all');
        if (v !== 'writes' && v !== 'all') {
          throw new InputError(
            flag,
            `Invalid --fault-on ${JSON.stringify(v)}: expected writes or all`,
          );
        }
        faults.faultOn = v;
        break;
      }
      case 'seed':
        faults.seed = number(
          flag,
          value('an integer'),
          'an integer from 0 to 4294967295',
          (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32,
        );
        break;
      case 'max-write-bytes': {
        const v = value('a byte size');
        const n = parseByteSize(v) ?? 0;
        if (n < 1) {
          throw new InputError(
            flag,
            `Invalid --max-write-bytes ${JSON.stringify(v)}: expected a byte size such as 64M or 4194304`,
          );
        }
        maxWriteBytes = n;
        break;
      }
      case 'nfs-export': {
        const v = value('/nfs/path=/local/dir');
        if (!EXPORT_LINE.test(v)) {
          throw new InputError(
            flag,
            `Invalid --nfs-export ${JSON.stringify(v)}: expected /nfs/path=/local/dir`,
          );
        }
        const eq = v.indexOf('=');
        exports.push({ pseudo: v.slice(0, eq), dir: v.slice(eq + 1) });
        break;
      }
      case 'nfs-server':
        nfsServer = value('an IPv4 address');
        slirpNetwork(nfsServer); // checks it, with one clear line
        break;
      case 'firmware': {
        const v = value('bios or uefi');
        if (v !== 'bios' && v !== 'uefi') {
          throw new InputError(
            flag,
            `Invalid --firmware ${JSON.stringify(v)}: expected bios or uefi`,
          );
        }
        firmware = v;
        break;
      }
      case 'work':
        work = path.resolve(value('a directory'));
        break;
      case 'quirks':
        quirks = parseQuirks(value('recorded or a list of quirks'));
        break;
      case 'imaging-mbit':
        imagingBytesPerSecond = mbit(flag, value('Mbit/s'));
        break;
      default:
        throw new InputError(flag, `Unknown flag --${flag}: see diskless emulator --help`);
    }
  }
  if (dataDir === undefined)
    throw new InputError(
      'data',
      'Flag --data is required: expected the directory holding the drives',
    );
  const rates = totalRate(faults);
  if (rates > 1)
    throw new InputError(
      'error-rate',
      `The fault rates add up to ${rates}: expected at most 1 in all`,
    );
  if (runServers && exports.length === 0) {
    throw new InputError(
      'nfs-export',
      'Flag --run-servers needs --nfs-export /nfs/path=/local/dir: expected what the CDs mount',
    );
  }
  const runner = runServers
    ? { work: work ?? path.join(dataDir, 'runner'), nfsServer, exports, firmware }
    : undefined;
  let generated: Account | undefined;
  if (accounts.length === 0) {
    generated = { user: randomUUID(), key: randomBytes(18).toString('base64url') };
    accounts.push(generated);
  }
  return {
    options: {
      dataDir,
      host,
      port,
      accounts,
      faults,
      maxWriteBytes,
      fsync,
      quirks,
      imagingBytesPerSecond,
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
  const kind = emulatorKind(args);
  if (kind === 'proxmox') return runPveEmulatorCommand(args, stop);
  if (kind !== 'elasticstack') {
    console.error(
      `diskless emulator: Invalid --kind ${JSON.stringify(kind)}: expected elasticstack (default) or proxmox`,
    );
    return 1;
  }
  args = withoutKind(args);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EMULATOR_USAGE);
    return 0;
  }
  try {
    const { options, generated, runner } = parseEmulatorArgs(args);
    const qemu = runner
      ? await startQemuRunner({
          ...runner,
          reporter: streamReporter((l) => {
            console.error(l);
          }),
        })
      : undefined;
    let emulator: Emulator;
    try {
      emulator = await startEmulator({ ...options, runner: qemu });
    } catch (error) {
      await qemu?.close();
      throw error;
    }
    return await serveUntilStopped(
      emulator,
      () => {
        console.log(`url=${emulator.url}`);
        if (runner) console.log(`consoles=${path.join(runner.work, 'consoles')}`);
        if (qemu) console.log(`network=${qemu.network}.0/24`);
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
