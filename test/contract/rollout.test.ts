// The bundled rollout action through the runner-faithful harness, against the emulator
// over real HTTP with state-only servers and a loopback TCP listener as their health:
// outputs, the summary table of who runs which release, a failure that still publishes
// its outputs, and the API key kept out of everything it prints.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { runAction } from '../../src/harness/run-action.js';
import { everythingShown, failureLine } from '../helpers/actions.js';
import { tempDir } from '../helpers/temp.js';
import type { LedgerEntry } from '../../src/releases/ledger.js';
import { call, createDrive, properties } from '../emulator/helpers.js';
import { R1, R2, tcpListeners } from '../rollout/fleet.js';

const dir = path.resolve(import.meta.dirname, '../../actions/rollout');
const USER = 'b0e2c2a4-1111-4222-8333-944445555666';
const SECRET = 'Kx9-very-secret-api-key-7Qz';
const account = { user: USER, key: SECRET };

let emu: Emulator;
let d1: string;
let d2: string;
let health: { port: number; close(): void };
beforeAll(async () => {
  emu = await startEmulator({
    dataDir: path.join(await tempDir('contract-rollout'), 'emu'),
    accounts: [account],
  });
  const drive = (suffix: string, release: string) =>
    createDrive(
      emu,
      `name boot-cd-${suffix}\nsize 1M\nclaim:type shared\nuser:diskless-release ${release}`,
      account,
    );
  d1 = await drive('aaaaaaaa', R1);
  d2 = await drive('bbbbbbbb', R2);
  for (const [name, ip] of [
    ['web1', '127.0.0.41'],
    ['web2', '127.0.0.42'],
  ] as const) {
    const r = await call(emu, 'servers/create', {
      as: account,
      body: `name ${name}\ncpu 1000\nmem 256\npersistent true\nide:0:1 ${d1}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:dhcp ${ip}`,
    });
    expect(r.status, r.text).toBe(200);
  }
  health = await tcpListeners(['127.0.0.41']); // web2 has no service
});
afterAll(async () => {
  health.close();
  await emu.close();
});

const valid = (extra: Record<string, string> = {}) => ({
  'api-url': emu.url,
  'api-user': USER,
  'api-key': SECRET,
  drive: d2,
  'health-check': `tcp:${health.port}`,
  'health-timeout': '2',
  'ledger-name': 'zone1',
  ...extra,
});

async function cdOf(name: string): Promise<string | undefined> {
  const all = JSON.parse(
    (await call(emu, 'servers/info', { as: account, headers: { accept: 'application/json' } }))
      .text,
  ) as Record<string, string>[];
  return all.find((s) => s.name === name)?.['ide:0:1'];
}

describe('rollout bundle', () => {
  it('dry run: outputs and a summary, nothing changed', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid({ 'dry-run': 'true' }) });
    expect(run.exitCode, run.main.log.join('\n')).toBe(0);
    expect(run.outputs).toMatchObject({ 'dry-run': 'true', 'servers-updated': '', release: R2 });
    expect(run.main.log).toContain('##[group]Plan the rollout');
    expect(await cdOf('web1')).toBe(d1);
  });

  it('stops at the server whose health fails, puts it back, publishes outputs and fails', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid() });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toMatch(
      /^Rollout stopped: server web2: health check tcp:\d+ failed within 2 s .*web2 is back on boot-cd-aaaaaaaa/,
    );
    expect(run.outputs).toMatchObject({
      'servers-updated': 'web1',
      'servers-restarted': 'web1 web2',
      'failed-server': 'web2',
      'previous-drive': d1,
    });
    expect(await cdOf('web1')).toBe(d2);
    expect(await cdOf('web2')).toBe(d1);
    // who runs which release, in the job summary
    expect(run.summary).toMatch(new RegExp(`<td>Server web1</td><td>runs ${R2} `));
    expect(run.summary).toMatch(new RegExp(`<td>Server web2</td><td>runs ${R1} `));
    const ledger = JSON.parse(run.outputs.ledger ?? '') as LedgerEntry;
    expect(ledger.release).toBe(R2);
    expect(ledger.also?.map((a) => a.release)).toEqual([R1]);
    expect(ledger.also?.[0]?.why).toMatch(/runs on web2/);
  });

  it('through the CLI: prints the outputs of a failed rollout, then its one error line', async () => {
    const cli = path.resolve(import.meta.dirname, '../../dist/cli/index.js');
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        cli,
        [
          'rollout',
          '--api-url',
          emu.url,
          '--api-user',
          USER,
          '--drive',
          d2,
          '--health-check',
          `tcp:${health.port}`,
          '--health-timeout',
          '1',
        ],
        { env: { PATH: process.env.PATH ?? '', DISKLESS_API_KEY: SECRET } },
        (error, stdout, stderr) => {
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, stdout, stderr });
        },
      );
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('failed-server=web2\n');
    expect(r.stdout).toContain('servers-restarted=web2\n');
    const last = r.stderr.trim().split('\n').at(-1) ?? '';
    expect(last).toMatch(
      /^diskless rollout: Rollout stopped: server web2: health check tcp:\d+ failed within 1 s/,
    );
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(await cdOf('web2')).toBe(d1);
  });

  it('fails with one line naming a bad input', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid({ 'batch-size': 'two' }) });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toBe(
      'Input "batch-size": got "two"; expected a whole number from 1 to 1000',
    );
  });

  it('never shows the API key, masked before anything is printed', async () => {
    const extras: Record<string, string>[] = [
      {},
      { 'api-key': `${SECRET}-wrong` },
      { restart: 'never' },
    ];
    for (const extra of extras) {
      const run = await runAction({ actionDir: dir, inputs: valid(extra), debug: true });
      expect(run.main.stdout.split('\n')[0]).toMatch(/^::add-mask::/);
      expect(everythingShown(run)).not.toContain(SECRET);
    }
  });

  it('rolls back to the previous drive', async () => {
    const run = await runAction({
      actionDir: dir,
      inputs: valid({ drive: d1, 'health-check': 'none' }),
    });
    expect(run.exitCode, run.main.log.join('\n')).toBe(0);
    expect(run.outputs).toMatchObject({ release: R1, 'servers-updated': 'web1' });
    expect(await cdOf('web1')).toBe(d1);
    expect(properties((await call(emu, `drives/${d2}/info`, { as: account })).text).claimed).toBe(
      undefined,
    );
  });
});
