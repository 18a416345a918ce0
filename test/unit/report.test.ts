// The recording reporter tests and benches read a step's log from.
import { describe, expect, it } from 'vitest';
import { recordingReporter } from '../../src/report.js';

describe('recordingReporter', () => {
  it('keeps every line as the CLI shows it, the warnings and the groups apart', async () => {
    const seen: string[] = [];
    const r = recordingReporter((line) => seen.push(line));
    r.info('start');
    await r.group('Phase', async () => {
      r.warning('careful', { file: 'etc/x' });
      r.debug('hidden without debug');
      await r.group('Inner', () => {
        r.info('deep');
        return Promise.resolve();
      });
    });
    expect(r.lines).toEqual(['start', '> Phase', 'warning: etc/x: careful', '> Inner', 'deep']);
    expect(seen).toEqual(r.lines);
    expect(r.warnings).toEqual(['careful']);
    expect(r.groups).toEqual(['Phase', 'Inner']);
  });

  it('indents inside groups and shows debug lines when asked', async () => {
    const r = recordingReporter(undefined, { indent: true, debug: true });
    await r.group('Phase', () => {
      r.debug('detail');
      return Promise.resolve();
    });
    expect(r.lines).toEqual(['> Phase', '  debug: detail']);
  });
});
