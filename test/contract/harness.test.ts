// The harness itself, on a fixture action that writes to every runner channel by hand.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAction } from '../../src/harness/run-action.js';

const echo = path.resolve(import.meta.dirname, '../fixtures/actions/echo');

describe('runAction harness', () => {
  it('passes inputs and defaults, reads outputs, state, env, path and summary, runs post', async () => {
    process.env.INPUT_LEAK = 'from the parent';
    const run = await runAction({
      actionDir: echo,
      inputs: { message: 'line one\nline two' },
    }).finally(() => delete process.env.INPUT_LEAK);
    expect(run.outputs.leak).toBe('unset');
    expect(run.exitCode).toBe(0);
    expect(run.outputs.echoed).toBe('line one\nline two');
    expect(run.outputs.spaced).toBe('spaced default');
    expect(run.outputs.temp).toMatch(/diskless-runner-.*\/temp$/);
    expect(run.outputs.cwd).toMatch(/diskless-runner-.*\/workspace$/);
    expect(run.state).toEqual({ seen: 'line one' });
    expect(run.exportedEnv).toEqual({ EXPORTED: 'yes' });
    expect(run.addedPath).toEqual(['/opt/fixture/bin']);
    expect(run.main.log).toContain('main says ***');
    expect(run.main.annotations).toEqual([
      { level: 'warning', message: 'a warning', properties: { file: 'main.js', line: '2' } },
    ]);
    expect(run.post?.exitCode).toBe(0);
    expect(run.post?.stdout).toContain('post: state=line one exported=yes');
    expect(run.summary).toBe('### main ran\n### post saw line one\n');
  });

  it('reports a failing step and still runs post (post-if defaults to always())', async () => {
    const run = await runAction({ actionDir: echo, inputs: { message: 'x', fail: 'true' } });
    expect(run.exitCode).toBe(1);
    expect(run.main.annotations.map((a) => a.level)).toEqual(['warning', 'error']);
    expect(run.post?.exitCode).toBe(0);
  });

  it('refuses an input the action does not declare', async () => {
    await expect(runAction({ actionDir: echo, inputs: { mesage: 'x' } })).rejects.toThrow(
      /has no input "mesage"/,
    );
  });
});
