/** `diskless emulator --kind proxmox`: its flags, its one-line refusals, and a run a client connects to. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { runEmulatorCommand } from '../../src/emulator/command.js';
import { parsePveEmulatorArgs } from '../../src/emulator/pve/command.js';
import { PveApi, restartVm } from '../../src/proxmox/index.js';

/** A client of the emulator as its printed url=, token= and fingerprint= lines say. */
function apiFromLines(get: (key: string) => string): PveApi {
  const token = get('token');
  const eq = token.lastIndexOf('=');
  return new PveApi({
    url: get('url'),
    tokenId: token.slice(0, eq),
    secret: token.slice(eq + 1),
    tls: { fingerprint: get('fingerprint') },
  });
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pve-emulator-cli-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

it('turns flags into options', () => {
  const { options, generated } = parsePveEmulatorArgs([
    '--kind',
    'proxmox',
    '--data',
    dir,
    '--token',
    'ci@pve!roll=s3cr=et',
    '--node',
    'pve1',
    '--node',
    'pve2',
    '--storage',
    'isos',
    '--vm',
    '101:client-a:10.0.0.5',
    '--vm=102:client-b',
    '--auth-delay-ms',
    '0',
    '--latency-ms',
    '50',
    '--connection-mbit',
    '50',
    '--link-mbit=400',
  ]);
  expect(generated).toBeUndefined();
  expect(options).toMatchObject({
    dataDir: dir,
    tokens: [{ id: 'ci@pve!roll', secret: 's3cr=et' }],
    nodes: ['pve1', 'pve2'],
    storages: [{ id: 'isos' }],
    authFailureDelayMs: 0,
    link: { latencyMs: 50, connectionBytesPerSecond: 6_250_000, linkBytesPerSecond: 50_000_000 },
  });
  expect(options.vms?.map((v) => [v.vmid, v.name, v.address, v.config?.agent])).toEqual([
    [101, 'client-a', '10.0.0.5', '1'],
    [102, 'client-b', undefined, undefined],
  ]);
});

it('refuses bad flags in one line, the secret masked, exit 1', async () => {
  const errors: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
  for (const args of [
    ['--kind', 'proxmox'],
    ['--kind', 'proxmox', '--data', dir, '--token', 'root=topsecret'],
    ['--kind', 'proxmox', '--data', dir, '--vm', '99:x'],
    ['--kind', 'vmware', '--data', dir],
  ]) {
    expect(await runEmulatorCommand(args), args.join(' ')).toBe(1);
  }
  expect(errors).toEqual([
    'diskless emulator: Flag --data is required: expected the directory holding the storages',
    'diskless emulator: Invalid --token "root=***": expected user@realm!tokenid=SECRET',
    'diskless emulator: Invalid --vm "99:x": expected VMID:NAME[:IPv4] with a VMID of 100 or more',
    'diskless emulator: Invalid --kind "vmware": expected elasticstack (default) or proxmox',
  ]);
});

it('serves until stopped; prints the URL, the fingerprint and the made-up token a client uses', async () => {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const stop = new AbortController();
  const running = runEmulatorCommand(
    ['--kind=proxmox', '--data', dir, '--vm', '101:a'],
    stop.signal,
  );
  await vi.waitFor(() => {
    expect(lines.length).toBe(3);
  }, 20_000);
  const get = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
  const api = apiFromLines(get);
  const vms = await api.call<{ vmid: number }[]>('GET', '/cluster/resources', { type: 'vm' });
  await api.close();
  expect(vms.map((v) => v.vmid)).toEqual([101]);
  stop.abort();
  expect(await running).toBe(0);
});

it('with --run-servers: needs an export; prints the network, and a VM without an IP gets one on it', async () => {
  const errors: string[] = [];
  vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
  expect(await runEmulatorCommand(['--kind=proxmox', '--data', dir, '--run-servers'])).toBe(1);
  expect(errors).toEqual([
    'diskless emulator: Flag --run-servers needs --nfs-export /nfs/path=/local/dir: expected what the CDs mount',
  ]);
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
  const stop = new AbortController();
  const running = runEmulatorCommand(
    [
      '--kind=proxmox',
      '--data',
      dir,
      '--vm',
      '101:a',
      '--run-servers',
      '--nfs-export',
      `/srv/diskless/current=${dir}`,
    ],
    stop.signal,
  );
  await vi.waitFor(() => {
    expect(lines.some((l) => l.startsWith('token='))).toBe(true);
  }, 60_000);
  const get = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
  expect(get('network')).toMatch(/^10\.213\.\d+\.0\/24$/);
  expect(get('consoles')).toBe(path.join(dir, 'runner', 'consoles'));
  const api = apiFromLines(get);
  // Started, it is a QEMU machine (with no ISO on its CD it boots nothing); its agent
  // reports the address it was given.
  await restartVm(api, { node: 'pve', vmid: 101 }, 'start');
  const agent = await api.call<{
    result: { name: string; 'ip-addresses': { 'ip-address': string }[] }[];
  }>('GET', '/nodes/pve/qemu/101/agent/network-get-interfaces');
  await api.close();
  const eth0 = agent.result.find((i) => i.name === 'eth0');
  expect(eth0?.['ip-addresses'][0]?.['ip-address']).toBe(get('network').replace(/\.0\/24$/, '.31'));
  stop.abort();
  expect(await running).toBe(0);
}, 120_000);
