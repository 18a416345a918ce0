import { describe, expect, it } from 'vitest';
import { parseFileCommands } from '../../src/harness/file-commands.js';
import { inputVariable } from '../../src/harness/run-action.js';
import { mask, readCommands } from '../../src/harness/workflow-commands.js';

describe('file commands', () => {
  it('reads name=value and heredoc entries like the runner', () => {
    const content = [
      'plain=a=b',
      'multi<<ghadelimiter_1',
      'line one',
      'x=y',
      '',
      'ghadelimiter_1',
      'empty<<EOF',
      'EOF',
      '',
    ].join('\n');
    expect(parseFileCommands(content, 'GITHUB_OUTPUT')).toEqual({
      plain: 'a=b',
      multi: 'line one\nx=y\n',
      empty: '',
    });
  });

  it('fails on a missing delimiter or an empty name', () => {
    expect(() => parseFileCommands('x<<END\nvalue\n', 'GITHUB_OUTPUT')).toThrow(/delimiter END/);
    expect(() => parseFileCommands('=v\n', 'GITHUB_ENV')).toThrow(/empty name/);
  });
});

describe('workflow commands', () => {
  it('collects masks and annotations and shows the log masked', () => {
    const stdout = [
      '::add-mask::s3cret',
      'using key s3cret now',
      '::error file=a.ts,line=3::bad%0Athing',
      '::warning::careful',
      '::debug::hidden',
      '::group::Upload',
      '::endgroup::',
    ].join('\n');
    const out = readCommands(stdout, 'stderr s3cret\n');
    expect(out.masks).toEqual(['s3cret']);
    expect(out.annotations).toEqual([
      { level: 'error', message: 'bad\nthing', properties: { file: 'a.ts', line: '3' } },
      { level: 'warning', message: 'careful', properties: {} },
    ]);
    expect(out.log).toEqual([
      'using key *** now',
      'Error: bad\nthing',
      'Warning: careful',
      '##[group]Upload',
      '##[endgroup]',
      'stderr ***',
    ]);
  });

  it('masks each line of a multi-line secret', () => {
    expect(mask('a LINE1 b LINE2', ['LINE1\nLINE2'])).toBe('a *** b ***');
  });

  it('names input variables as the runner does', () => {
    expect(inputVariable('api-key')).toBe('INPUT_API-KEY');
    expect(inputVariable('my input')).toBe('INPUT_MY_INPUT');
  });
});
