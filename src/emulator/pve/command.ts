/**
 * `diskless emulator --kind proxmox`: runs the Proxmox VE front end until SIGINT or
 * SIGTERM. Prints `url=<API base>` first, then `fingerprint=<SHA-256 of its certificate>`
 * (what a client pins), then one `token=` line per token (the secret only for a token
 * it made up), so scripts can read where to connect.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { InputError } from '../../errors.js';
import type { PveEmulatorOptions, PveToken, PveVmSpec } from './options.js';
import { startPveEmulator } from './server.js';
import { commandFailed, serveUntilStopped } from '../serve.js';

export const PVE_EMULATOR_USAGE = `usage: diskless emulator --kind proxmox --data DIR [flags]

Runs a local Proxmox VE API (HTTPS with a certificate made at start: API tokens, ISO
storages and uploads, tasks, VMs as state) until SIGINT or SIGTERM.

  --data DIR             directory holding the storages' files (required)
  --port N               TCP port, 0 for any free one (default 0)
  --host H               address to listen on (default 127.0.0.1)
  --token ID=SECRET      an API token user@realm!tokenid (repeatable); by default one
                         random root@pam!diskless token
  --node NAME            a node (repeatable; default pve)
  --storage ID           a shared storage holding ISOs (repeatable; default local)
  --vm VMID:NAME[:IP]    a stopped VM with a CD drive on the first node (repeatable);
                         with IP its guest agent reports that address
  --auth-delay-ms N      delay of 401 answers (default 3000, as Proxmox)
  --task-ms N            how long each task runs (default 50)
  --latency-ms N         delay added before every response
  --connection-mbit N    bandwidth cap per connection (upload bodies), Mbit/s
  --link-mbit N          bandwidth cap shared by all connections, Mbit/s`;

function need(flag: string, value: string | undefined, expected: string): string {
  if (value === undefined || value.startsWith('--')) {
    throw new InputError(flag, `Flag --${flag} needs a value: expected ${expected}`);
  }
  return value;
}

function wholeNumber(flag: string, value: string, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n <= max)) {
    throw new InputError(
      flag,
      `Invalid --${flag} ${JSON.stringify(value)}: expected a whole number from 0 to ${max}`,
    );
  }
  return n;
}

function mbit(flag: string, value: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new InputError(
      flag,
      `Invalid --${flag} ${JSON.stringify(value)}: expected a positive number of Mbit/s, e.g. 50`,
    );
  }
  return n * 125_000;
}

/** The command line as emulator options; `generated` is the made-up token, if any. */
export function parsePveEmulatorArgs(args: string[]): {
  options: PveEmulatorOptions;
  generated: PveToken | undefined;
} {
  const tokens: PveToken[] = [];
  const nodes: string[] = [];
  const storages: string[] = [];
  const vms: PveVmSpec[] = [];
  const o: Partial<PveEmulatorOptions> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      throw new InputError(
        arg,
        `Unexpected argument ${JSON.stringify(arg)}: expected --flag value (see --help)`,
      );
    }
    const flag = m[1] ?? '';
    const value = (expected: string) => m[2] ?? need(flag, args[++i], expected);
    switch (flag) {
      case 'kind':
        value('proxmox');
        break;
      case 'data':
        o.dataDir = path.resolve(value('a directory'));
        break;
      case 'host':
        o.host = value('an address');
        break;
      case 'port':
        o.port = wholeNumber(flag, value('a port'), 65535);
        break;
      case 'token': {
        const v = value('user@realm!tokenid=SECRET');
        const eq = v.indexOf('='); // token IDs have no '=', secrets may
        if (
          eq <= 0 ||
          eq === v.length - 1 ||
          !/^[^\s!@]+@[^\s!@]+![A-Za-z][\w.-]*$/.test(v.slice(0, eq))
        ) {
          throw new InputError(
            flag,
            `Invalid --token ${JSON.stringify(eq > 0 ? `${v.slice(0, eq)}=***` : v.replace(/=.*/, '=***'))}: expected user@realm!tokenid=SECRET`,
          );
        }
        tokens.push({ id: v.slice(0, eq), secret: v.slice(eq + 1) });
        break;
      }
      case 'node': {
        const v = value('a node name');
        if (!/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(v)) {
          throw new InputError(
            flag,
            `Invalid --node ${JSON.stringify(v)}: expected a host name such as pve1`,
          );
        }
        nodes.push(v);
        break;
      }
      case 'storage': {
        const v = value('a storage ID');
        if (!/^[a-zA-Z][\w.-]*$/.test(v)) {
          throw new InputError(
            flag,
            `Invalid --storage ${JSON.stringify(v)}: expected a storage ID such as local or isos`,
          );
        }
        storages.push(v);
        break;
      }
      case 'vm': {
        const v = value('VMID:NAME[:IP]');
        const vm = /^(\d+):([A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d+\.\d+\.\d+\.\d+))?$/.exec(v);
        if (!vm || Number(vm[1]) < 100) {
          throw new InputError(
            flag,
            `Invalid --vm ${JSON.stringify(v)}: expected VMID:NAME[:IPv4] with a VMID of 100 or more`,
          );
        }
        vms.push({
          vmid: Number(vm[1]),
          name: vm[2] ?? '',
          config: {
            ide2: 'none,media=cdrom',
            boot: 'order=ide2;net0',
            ...(vm[3] ? { agent: '1' } : {}),
          },
          ...(vm[3] ? { address: vm[3] } : {}),
        });
        break;
      }
      case 'latency-ms':
        o.link = { ...o.link, latencyMs: wholeNumber(flag, value('milliseconds'), 60_000) };
        break;
      case 'connection-mbit':
        o.link = { ...o.link, connectionBytesPerSecond: mbit(flag, value('Mbit/s')) };
        break;
      case 'link-mbit':
        o.link = { ...o.link, linkBytesPerSecond: mbit(flag, value('Mbit/s')) };
        break;
      case 'auth-delay-ms':
        o.authFailureDelayMs = wholeNumber(flag, value('milliseconds'), 60_000);
        break;
      case 'task-ms':
        o.taskMs = wholeNumber(flag, value('milliseconds'), 600_000);
        break;
      default:
        throw new InputError(
          flag,
          `Unknown flag --${flag}: see diskless emulator --kind proxmox --help`,
        );
    }
  }
  if (o.dataDir === undefined) {
    throw new InputError(
      'data',
      'Flag --data is required: expected the directory holding the storages',
    );
  }
  let generated: PveToken | undefined;
  if (tokens.length === 0) {
    generated = { id: 'root@pam!diskless', secret: randomBytes(18).toString('base64url') };
    tokens.push(generated);
  }
  return {
    options: {
      ...o,
      dataDir: o.dataDir,
      tokens,
      ...(nodes.length > 0 ? { nodes } : {}),
      ...(storages.length > 0 ? { storages: storages.map((id) => ({ id })) } : {}),
      vms,
    },
    generated,
  };
}

/** Runs the front end until SIGINT/SIGTERM (or `stop`); the exit code. */
export async function runPveEmulatorCommand(args: string[], stop?: AbortSignal): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(PVE_EMULATOR_USAGE);
    return 0;
  }
  try {
    const { options, generated } = parsePveEmulatorArgs(args);
    const emulator = await startPveEmulator(options);
    return await serveUntilStopped(
      emulator,
      () => {
        console.log(`url=${emulator.url}`);
        console.log(`fingerprint=${emulator.fingerprint}`);
        for (const t of options.tokens)
          console.log(t === generated ? `token=${t.id}=${t.secret}` : `token=${t.id}`);
      },
      stop,
    );
  } catch (error) {
    return commandFailed(error);
  }
}
