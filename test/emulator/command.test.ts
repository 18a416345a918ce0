import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseEmulatorArgs, runEmulatorCommand } from '../../src/emulator/command.js';
import { run } from '../../src/process/run.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'emulator-cli-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

describe('diskless emulator flags', () => {
  it('turns flags into options (Mbit/s as bytes per second)', () => {
    const { options, generated } = parseEmulatorArgs([
      '--data',
      dir,
      '--port=0',
      '--account',
      'u1:k1',
      '--latency-ms',
      '50',
      '--connection-mbit',
      '50',
      '--link-mbit',
      '400',
      '--error-rate',
      '0.1',
      '--seed',
      '3',
      '--fault-on',
      'all',
    ]);
    expect(generated).toBeUndefined();
    expect(options).toMatchObject({
      dataDir: dir,
      port: 0,
      accounts: [{ user: 'u1', key: 'k1' }],
      faults: {
        latencyMs: 50,
        connectionBytesPerSecond: 6_250_000,
        linkBytesPerSecond: 50_000_000,
        errorRate: 0.1,
        seed: 3,
        faultOn: 'all',
      },
    });
  });

  it('takes the recorded quirks, all or some, and the imaging speed', () => {
    const all = parseEmulatorArgs(['--data', dir, '--quirks', 'recorded']).options;
    expect(all.quirks).toEqual({
      stringCounters: true,
      omitDefaults: true,
      notFoundAs400: true,
      serviceWrite: true,
      oneWriterPerDrive: true,
    });
    const some = parseEmulatorArgs([
      '--data',
      dir,
      '--quirks=not-found-400,one-writer',
      '--imaging-mbit',
      '8',
    ]).options;
    expect(some.quirks).toEqual({ notFoundAs400: true, oneWriterPerDrive: true });
    expect(some.imagingBytesPerSecond).toBe(1_000_000);
  });

  it('takes the QEMU runner flags, and needs an export with --run-servers', () => {
    const { runner } = parseEmulatorArgs([
      '--data',
      dir,
      '--run-servers',
      '--nfs-export',
      '/srv/diskless/current=/srv/diskless/releases/7',
      '--nfs-export=/usr=/usr',
      '--firmware',
      'uefi',
    ]);
    expect(runner).toEqual({
      work: path.join(dir, 'runner'),
      nfsServer: '10.0.2.100',
      firmware: 'uefi',
      exports: [
        { pseudo: '/srv/diskless/current', dir: '/srv/diskless/releases/7' },
        { pseudo: '/usr', dir: '/usr' },
      ],
    });
    expect(parseEmulatorArgs(['--data', dir]).runner).toBeUndefined();
  });

  it('with --run-servers, refuses an export that is not a directory in one line, exit 1', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
    const missing = path.join(dir, 'no-such-release');
    const code = await runEmulatorCommand([
      '--data',
      dir,
      '--run-servers',
      '--nfs-export',
      `/srv/diskless/current=${missing}`,
    ]);
    expect(code).toBe(1);
    expect(errors.at(-1)).toBe(
      `diskless emulator: NFS export /srv/diskless/current: ${missing} is not a directory`,
    );
  });

  it('with --run-servers, prints the servers network, which this machine routes to, gone once stopped', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const stop = new AbortController();
    const done = runEmulatorCommand(
      ['--data', dir, '--run-servers', '--nfs-export', `/srv/diskless/current=${dir}`],
      stop.signal,
    );
    let network: string | undefined;
    for (let i = 0; i < 600 && network === undefined; i++) {
      network = lines.find((l) => l.startsWith('network='))?.slice('network='.length);
      if (network === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(network).toMatch(/^10\.213\.\d+\.0\/24$/);
    const prefix = (network ?? '').replace(/\.0\/24$/, '');
    const route = async () =>
      (await run('ip', ['-j', '-4', 'route', 'show', `${prefix}.0/24`])).stdout;
    const [here] = JSON.parse(await route()) as { dev: string; prefsrc: string }[];
    expect(here).toMatchObject({ dev: expect.stringMatching(/^dlc\d+h$/) as string });
    expect(here?.prefsrc).toBe(`${prefix}.254`);
    stop.abort();
    expect(await done).toBe(0);
    expect(JSON.parse(await route())).toEqual([]);
    expect((await run('ip', ['-o', 'link', 'show'])).stdout).not.toContain(`${here?.dev ?? '?'}@`);
  }, 120_000);

  it('refuses bad flags with one line naming the flag, the value and what was expected', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
    const cases: [string[], RegExp][] = [
      [['--data', dir, '--error-rate', '1.5'], /--error-rate "1\.5": expected a share from 0 to 1/],
      [['--data', dir, '--port', 'x'], /--port "x": expected a port from 0 to 65535/],
      [['--data', dir, '--link-mbit', '0'], /--link-mbit "0": expected a positive number/],
      [['--data', dir, '--account', 'nokey'], /--account .*expected USER:KEY/],
      [['--data', dir, '--fault-on', 'reads'], /--fault-on "reads": expected writes or all/],
      [['--data', dir, '--bogus', '1'], /Unknown flag --bogus/],
      [['--data', dir, '--seed'], /--seed needs a value/],
      [['--port', '0'], /--data is required/],
      [
        ['--data', dir, '--quirks', 'strings'],
        /--quirks "strings": expected recorded or a comma-separated list of string-counters, /,
      ],
      [['--data', dir, '--imaging-mbit', '-1'], /--imaging-mbit "-1": expected a positive number/],
      [['--data', dir, '--run-servers'], /--run-servers needs --nfs-export/],
      [
        ['--data', dir, '--nfs-export', 'usr'],
        /--nfs-export "usr": expected \/nfs\/path=\/local\/dir/,
      ],
      [['--data', dir, '--firmware', 'coreboot'], /--firmware "coreboot": expected bios or uefi/],
      [
        ['--data', dir, '--nfs-server', 'nfs.local'],
        /NFS server "nfs\.local": expected the IPv4 address/,
      ],
    ];
    for (const [args, message] of cases) {
      errors.length = 0;
      expect(await runEmulatorCommand(args), args.join(' ')).toBe(1);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^diskless emulator: /);
      expect(errors[0]).toMatch(message);
    }
  });

  it('runs in process: prints url= then the account it made up, serves, stops on abort', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const stop = new AbortController();
    const running = runEmulatorCommand(['--data', dir], stop.signal);
    await vi.waitFor(() => {
      expect(lines.length).toBeGreaterThanOrEqual(2);
    });
    const url = /^url=(http:\/\/127\.0\.0\.1:\d+\/)$/.exec(lines[0] ?? '')?.[1];
    const account = /^account=([^:]+):(.+)$/.exec(lines[1] ?? '');
    expect(url).toBeDefined();
    expect(account).not.toBeNull();
    const auth = `Basic ${Buffer.from(`${account?.[1] ?? ''}:${account?.[2] ?? ''}`).toString('base64')}`;
    const res = await request(`${url ?? ''}drives/list`, { headers: { authorization: auth } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    stop.abort();
    expect(await running).toBe(0);
  });

  it('runs as a process until SIGTERM and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "import { runEmulatorCommand } from './src/emulator/command.ts'; process.exitCode = await runEmulatorCommand(process.argv.slice(1));",
        '--',
        '--data',
        dir,
        '--account',
        'u:k',
      ],
      { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = (await lines.next()).value as string;
    expect(first).toMatch(/^url=http:\/\/127\.0\.0\.1:\d+\/$/);
    expect((await lines.next()).value).toBe('account=u'); // a given key is not echoed
    const res = await request(`${first.slice(4)}drives/list`, {
      headers: { authorization: `Basic ${Buffer.from('u:k').toString('base64')}` },
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});
