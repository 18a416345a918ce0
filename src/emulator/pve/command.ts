/**
 * `diskless emulator --kind proxmox`: runs the Proxmox VE front end until SIGINT or
 * SIGTERM. Prints `url=<API base>` first, then `fingerprint=<SHA-256 of its certificate>`
 * (what a client pins), then one `token=` line per token (the secret only for a token
 * it made up), so scripts can read where to connect.
 */
import { randomBytes } from 'node:crypto';
import { flagHelp, readFlags } from '../../cli/flags.js';
import { custom, each, FieldError, filePath, integer, text } from '../../inputs/fields.js';
import { defineInputs } from '../../inputs/read.js';
import { given, KIND_DESCRIPTION, kindFlag, mbitFlag } from '../flags.js';
import type { PveEmulatorOptions, PveToken, PveVmSpec } from './options.js';
import { startPveEmulator } from './server.js';
import type { QemuRunnerOptions } from '../qemu-runner.js';
import {
  checkRunnerFlags,
  RUNNER_FLAGS,
  runnerDescriptions,
  runnerFields,
  runnerLines,
  runnerOptions,
  startWithRunner,
} from '../runner-flags.js';
import { commandFailed, serveUntilStopped } from '../serve.js';

/** user@realm!tokenid=SECRET; a bad one is shown with its secret masked. */
function parseToken(v: string): PveToken {
  const eq = v.indexOf('='); // token IDs have no '=', secrets may
  if (
    eq <= 0 ||
    eq === v.length - 1 ||
    !/^[^\s!@]+@[^\s!@]+![A-Za-z][\w.-]*$/.test(v.slice(0, eq))
  ) {
    const masked = eq > 0 ? `${v.slice(0, eq)}=***` : v.replace(/=.*/, '=***');
    throw new FieldError(undefined, JSON.stringify(masked));
  }
  return { id: v.slice(0, eq), secret: v.slice(eq + 1) };
}

function parseVm(v: string): PveVmSpec {
  const vm = /^(\d+):([A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d+\.\d+\.\d+\.\d+))?$/.exec(v);
  if (!vm || Number(vm[1]) < 100) throw new FieldError();
  return {
    vmid: Number(vm[1]),
    name: vm[2] ?? '',
    config: {
      ide2: 'none,media=cdrom',
      boot: 'order=ide2;net0',
      ...(vm[3] ? { agent: '1' } : {}),
    },
    ...(vm[3] ? { address: vm[3] } : {}),
  };
}

const ms = (max: number) => integer({ min: 0, max });

/** The flags of `diskless emulator --kind proxmox`: what --help prints and how each is read. */
export const pveEmulatorFlags = defineInputs(
  {
    kind: kindFlag,
    data: filePath({
      required: true,
      expected: 'the directory holding the storages',
    }),
    port: integer({ min: 0, max: 65535 }),
    host: text({ expected: 'an address' }),
    token: each(custom({ expected: 'user@realm!tokenid=SECRET' }, parseToken), {}),
    node: each(
      text({
        pattern: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/,
        expected: 'a host name such as pve1',
      }),
      {},
    ),
    storage: each(
      text({ pattern: /^[a-zA-Z][\w.-]*$/, expected: 'a storage ID such as local or isos' }),
      {},
    ),
    vm: each(custom({ expected: 'VMID:NAME[:IPv4] with a VMID of 100 or more' }, parseVm), {}),
    'auth-delay-ms': ms(60_000),
    'task-ms': ms(600_000),
    'latency-ms': ms(60_000),
    'connection-mbit': mbitFlag(),
    'link-mbit': mbitFlag(),
    ...runnerFields,
  },
  checkRunnerFlags,
  {
    kind: KIND_DESCRIPTION,
    data: "directory holding the storages' files",
    port: 'TCP port, 0 for any free one (default 0)',
    host: 'address to listen on (default 127.0.0.1)',
    token:
      'ID=SECRET: an API token user@realm!tokenid; by default one random root@pam!diskless token',
    node: 'a node (default pve)',
    storage: 'a shared storage holding ISOs (default local)',
    vm: 'VMID:NAME[:IP]: a stopped VM with a CD drive on the first node; with IP its guest agent reports that address',
    'auth-delay-ms': 'delay of 401 answers (default 3000, as Proxmox)',
    'task-ms': 'how long each task runs (default 50)',
    'latency-ms': 'delay added before every response',
    'connection-mbit': 'bandwidth cap per connection (upload bodies), Mbit/s',
    'link-mbit': 'bandwidth cap shared by all connections, Mbit/s',
    ...runnerDescriptions,
  },
);

export const PVE_EMULATOR_USAGE = `usage: diskless emulator --kind proxmox --data DIR [flags]

Runs a local Proxmox VE API (HTTPS with a certificate made at start: API tokens, ISO
storages and uploads, tasks, VMs) until SIGINT or SIGTERM.

${flagHelp(
  pveEmulatorFlags.fields,
  Object.keys(pveEmulatorFlags.fields).filter((n) => !RUNNER_FLAGS.includes(n)),
  18,
)}

VMs are state only unless --run-servers: then a started VM is a QEMU machine booting its
CD-ROM ISOs (the boot CD first) against an NFS server on this machine, as with the
ElasticStack emulator (root and the boot test's packages). A VM given without an IP gets
one on the machines' network (printed as network=), .31 for the first such VM, .32 next.
${flagHelp(pveEmulatorFlags.fields, RUNNER_FLAGS, 18)}`;

/** The command line as emulator options; `generated` is the made-up token, if any. */
export function parsePveEmulatorArgs(args: string[]): {
  options: PveEmulatorOptions;
  generated: PveToken | undefined;
  /** With --run-servers: the QEMU runner to start. */
  runner: QemuRunnerOptions | undefined;
} {
  const o = readFlags(pveEmulatorFlags, args);
  const mbit = (n: number | undefined) => (n === undefined ? undefined : n * 125_000);
  const link = given({
    latencyMs: o.latencyMs,
    connectionBytesPerSecond: mbit(o.connectionMbit),
    linkBytesPerSecond: mbit(o.linkMbit),
  });
  const tokens = [...o.token];
  let generated: PveToken | undefined;
  if (tokens.length === 0) {
    generated = { id: 'root@pam!diskless', secret: randomBytes(18).toString('base64url') };
    tokens.push(generated);
  }
  return {
    options: {
      ...given({
        host: o.host,
        port: o.port,
        authFailureDelayMs: o.authDelayMs,
        taskMs: o.taskMs,
      }),
      ...(Object.keys(link).length > 0 ? { link } : {}),
      dataDir: o.data,
      tokens,
      ...(o.node.length > 0 ? { nodes: o.node } : {}),
      ...(o.storage.length > 0 ? { storages: o.storage.map((id) => ({ id })) } : {}),
      vms: o.vm,
    },
    generated,
    runner: runnerOptions(o, o.data),
  };
}

/** A machine needs an address: VMs given without one get the next on the runner's network. */
function withAddresses(vms: PveVmSpec[], network: string): PveVmSpec[] {
  let next = 31;
  return vms.map((vm) =>
    vm.address
      ? vm
      : {
          ...vm,
          address: `${network}.${String(next++)}`,
          config: { ...vm.config, agent: '1' },
        },
  );
}

/** Runs the front end until SIGINT/SIGTERM (or `stop`); the exit code. */
export async function runPveEmulatorCommand(args: string[], stop?: AbortSignal): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(PVE_EMULATOR_USAGE);
    return 0;
  }
  try {
    const { options, generated, runner } = parsePveEmulatorArgs(args);
    const { emulator, qemu } = await startWithRunner(runner, (qemu) =>
      startPveEmulator(
        qemu
          ? { ...options, runner: qemu, vms: withAddresses(options.vms ?? [], qemu.network) }
          : options,
      ),
    );
    return await serveUntilStopped(
      emulator,
      () => {
        console.log(`url=${emulator.url}`);
        console.log(`fingerprint=${emulator.fingerprint}`);
        for (const line of runnerLines(runner, qemu)) console.log(line);
        for (const t of options.tokens)
          console.log(t === generated ? `token=${t.id}=${t.secret}` : `token=${t.id}`);
      },
      stop,
    );
  } catch (error) {
    return commandFailed(error);
  }
}
