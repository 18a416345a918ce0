// Each bundled action (the committed dist/, as a workflow would run it) through the
// runner-faithful harness: bad input fails with one clear line and exit code 1.
// upload-drive, which holds a credential, has its own file (upload-drive.test.ts).
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/harness/run-action.js';
import { readFile } from 'node:fs/promises';
import { makeClient, overlay, SAMPLE_ROOT_TIMEOUT, sampleRoot } from '../iso/fixture.js';
import { makeMaster, makeTemplate } from '../rootfs/fixture.js';
import { failureLine } from '../helpers/actions.js';
import { tempDir } from '../helpers/temp.js';

const actionsDir = path.resolve(import.meta.dirname, '../../actions');
interface Case {
  action: string;
  valid: () => Record<string, string>;
  missing: string;
  malformed: [input: string, value: string, expected: string];
}

const cases: Case[] = [
  {
    action: 'build-rootfs',
    valid: () => ({ target: '/srv/diskless-contract-test' }),
    missing: 'target',
    malformed: ['keep', 'many', 'expected a whole number from 2 to 1000'],
  },
  {
    action: 'build-iso',
    valid: () => ({ root: '/srv/diskless/current', 'nfs-root': '10.0.0.1:/srv/diskless/current' }),
    missing: 'nfs-root',
    malformed: ['boot-mode', 'efi', 'expected one of bios | uefi | both'],
  },
  {
    action: 'promote',
    valid: () => ({ target: '/srv/diskless-contract-test', release: 'previous' }),
    missing: 'release',
    malformed: ['release', 'latest', 'expected a release id such as 20261129T120000Z, or previous'],
  },
];

describe.each(cases)('$action bundle', (c) => {
  const dir = path.join(actionsDir, c.action);

  it('fails with exit code 1 and a clear line when a required input is missing', async () => {
    const inputs = c.valid();
    inputs[c.missing] = '';
    const run = await runAction({ actionDir: dir, inputs });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toMatch(new RegExp(`^Input "${c.missing}" is required: expected .+`));
    expect(run.summary).toContain(`Input "${c.missing}" is required`);
    expect(run.outputs).toEqual({});
  });

  it('fails with exit code 1 naming the input, the value and what was expected', async () => {
    const [input, value, expected] = c.malformed;
    const run = await runAction({ actionDir: dir, inputs: { ...c.valid(), [input]: value } });
    expect(run.exitCode).toBe(1);
    const line = failureLine(run);
    expect(line).toContain(`Input "${input}"`);
    expect(line).toContain(`got "${value}"`);
    expect(line).toContain(expected);
    expect(line).not.toContain('\n');
  });
});

describe('build-rootfs bundle on a fixture master root', () => {
  it('builds a release and publishes its outputs and summary', async () => {
    const source = await makeMaster();
    const target = path.join(await tempDir('contract-target'), 'clients');
    const inputs = {
      source,
      target,
      template: await makeTemplate(),
      'state-dir': await tempDir('contract-state'),
      'nfs-server': '10.0.0.1',
    };
    const run = await runAction({ actionDir: path.join(actionsDir, 'build-rootfs'), inputs });
    expect(run.main.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.outputs.changed).toBe('true');
    expect(run.outputs.root).toBe(path.join(target, 'releases', run.outputs.release ?? ''));
    expect(Number(run.outputs.files)).toBeGreaterThan(10);
    expect(Number(run.outputs.bytes)).toBeGreaterThan(0);
    expect(run.outputs.duration).toMatch(/^\d+(\.\d+)?$/);
    expect(run.summary).toContain('build-rootfs');
    expect(run.summary).toContain(run.outputs.root);

    const again = await runAction({ actionDir: path.join(actionsDir, 'build-rootfs'), inputs });
    expect(again.exitCode).toBe(0);
    expect(again.outputs.changed).toBe('false');
    expect(again.outputs.release).toBe(run.outputs.release);
  });
});

describe('build-iso bundle on the sample root', () => {
  // A private overlay of the sample root: mkinitramfs leaves nothing in the cached root.
  let view: { root: string; remove: () => void };
  beforeAll(async () => {
    view = await overlay(sampleRoot());
  }, SAMPLE_ROOT_TIMEOUT);
  afterAll(() => {
    view.remove();
  });

  it('builds the ISO and publishes its outputs, summary and .sha256', async () => {
    const out = await tempDir('contract-iso');
    const output = path.join(out, 'boot.iso');
    const inputs = {
      root: await makeClient(view.root),
      sysroot: view.root,
      'nfs-root': '10.0.0.1:/srv/diskless/current',
      output,
      'cache-dir': path.join(out, 'cache'),
    };
    const run = await runAction({ actionDir: path.join(actionsDir, 'build-iso'), inputs });
    expect(run.main.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.outputs.iso).toBe(output);
    expect(run.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await readFile(`${output}.sha256`, 'utf8')).toBe(
      `${run.outputs.sha256 ?? ''}  boot.iso\n`,
    );
    expect(Number(run.outputs.size)).toBeGreaterThan(1 << 20);
    expect(run.outputs['kernel-version']).toMatch(/^6\.\d+\.\d+-\d+-amd64$/);
    expect(run.outputs['initramfs-cache-hit']).toBe('false');
    expect(run.outputs['cache-key']).toMatch(/^diskless-initramfs-/);
    expect(run.summary).toContain('build-iso');
    expect(run.summary).toContain(run.outputs['cache-key']);
    expect(run.summary).toContain('Time per phase');

    const again = await runAction({ actionDir: path.join(actionsDir, 'build-iso'), inputs });
    expect(again.exitCode).toBe(0);
    expect(again.outputs['initramfs-cache-hit']).toBe('true');
    expect(again.outputs.sha256).toBe(run.outputs.sha256);
  });
});
