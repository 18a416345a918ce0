// Each bundled action (the committed dist/, as a workflow would run it) through the
// runner-faithful harness: bad input fails with one clear line and exit code 1, and a
// credential given as input never shows in the output, the log or the summary.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../../src/harness/run-action.js';

const actionsDir = path.resolve(import.meta.dirname, '../../actions');
const SECRET = 'Kx9-very-secret-api-key-7Qz';

let image: string;
beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-contract-'));
  image = path.join(dir, 'boot.iso');
  await writeFile(image, Buffer.alloc(64 * 1024, 7));
});

interface Case {
  action: string;
  valid: () => Record<string, string>;
  missing: string;
  malformed: [input: string, value: string, expected: string];
  issue: number;
}

const cases: Case[] = [
  {
    action: 'build-rootfs',
    valid: () => ({ target: '/srv/diskless-contract-test' }),
    missing: 'target',
    malformed: ['keep', 'many', 'expected a whole number from 2 to 1000'],
    issue: 4,
  },
  {
    action: 'build-iso',
    valid: () => ({ root: '/srv/diskless/current', 'nfs-root': '10.0.0.1:/srv/diskless/current' }),
    missing: 'nfs-root',
    malformed: ['boot-mode', 'efi', 'expected one of bios | uefi | both'],
    issue: 5,
  },
  {
    action: 'upload-drive',
    valid: () => ({
      image,
      'api-url': 'http://127.0.0.1:1/',
      'api-user': 'b0e2c2a4-1111-4222-8333-944445555666',
      'api-key': SECRET,
      'drive-name': 'contract-boot',
    }),
    missing: 'api-key',
    malformed: ['chunk-size', '65M', 'expected a byte size from 4K to 64M'],
    issue: 3,
  },
];

function failureLine(run: ActionRun): string {
  const errors = run.main.annotations.filter((a) => a.level === 'error');
  expect(errors).toHaveLength(1);
  return errors[0]?.message ?? '';
}

/** Everything the action printed except the ::add-mask:: command that registers it. */
function everythingShown(run: ActionRun): string {
  const stdout = run.main.stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n');
  return [stdout, run.main.stderr, run.summary, JSON.stringify(run.outputs)].join('\n');
}

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

  it('validates good inputs, then says the step is not built yet instead of faking success', async () => {
    const run = await runAction({ actionDir: dir, inputs: c.valid() });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toBe(
      `${c.action}: the inputs are valid, but this step is not built yet (issue #${c.issue}); nothing was changed`,
    );
    expect(run.outputs).toEqual({});
  });
});

describe('credentials', () => {
  const dir = path.join(actionsDir, 'upload-drive');

  it('masks the API key before printing anything', async () => {
    const run = await runAction({ actionDir: dir, inputs: cases[2]?.valid() ?? {} });
    expect(run.main.stdout.split('\n')[0]).toBe(`::add-mask::${SECRET}`);
    expect(run.main.masks).toEqual([SECRET]);
  });

  it.each([
    ['valid inputs', {}],
    ['a malformed input beside it', { concurrency: 'lots' }],
    ['the key in the URL', { 'api-url': `https://user:${SECRET}@api.example/` }],
    ['a malformed key', { 'api-key': `${SECRET}\n` }],
  ])('never shows the API key, with %s', async (_, extra: Record<string, string>) => {
    const run = await runAction({ actionDir: dir, inputs: { ...cases[2]?.valid(), ...extra } });
    expect(run.exitCode).toBe(1);
    expect(everythingShown(run)).not.toContain(SECRET);
    expect(run.main.log.join('\n')).not.toContain(SECRET);
  });
});
