// The rules behind releases, without a filesystem: what a mount-table line names, which
// release `previous` is, when a release may go, and how rsync's escaped paths are read.
import { describe, expect, it } from 'vitest';
import { previousOf, whoRan, type Promotion } from '../../src/releases/history.js';
import { mountedPaths, releaseOfMount, type InUse } from '../../src/releases/in-use.js';
import { planRetention } from '../../src/releases/retention.js';
import { itemPath } from '../../src/rootfs/rsync.js';

const T = '/srv/diskless';
const DAY = 24 * 3600 * 1000;
const NOW = Date.parse('2026-11-29T12:00:00Z');
const ago = (days: number): string => new Date(NOW - days * DAY).toISOString();

describe('the NFS mount table', () => {
  it('reads rmtab lines and `showmount -a` output alike', () => {
    expect(
      mountedPaths(
        [
          `10.0.0.7:${T}/releases/20261101T000000Z:0x00000001`,
          `client.example:${T}/current`,
          'All mount points on master:',
          `[fd00::7]:${T}/releases/20261102T000000Z:0x00000002`,
          '',
        ].join('\n'),
      ),
    ).toEqual([`${T}/releases/20261101T000000Z`, `${T}/current`, `${T}/releases/20261102T000000Z`]);
  });

  it('maps a mounted path to its release, current to the current one, the target to all', () => {
    const cur = '20261103T000000Z';
    expect(releaseOfMount(T, `${T}/releases/20261101T000000Z`, cur)).toEqual({
      id: '20261101T000000Z',
    });
    expect(releaseOfMount(T, `${T}/releases/20261101T000000Z/usr`, cur)).toEqual({
      id: '20261101T000000Z',
    });
    expect(releaseOfMount(T, `${T}/current`, cur)).toEqual({ id: cur });
    expect(releaseOfMount(T, T, cur)).toEqual({ all: true });
    expect(releaseOfMount(T, `${T}/releases`, cur)).toEqual({ all: true });
    expect(releaseOfMount(T, '/home', cur)).toEqual({});
    expect(releaseOfMount(T, '/srv/diskless-other/releases/x', cur)).toEqual({});
  });
});

describe('the promotion history', () => {
  const h: Promotion[] = [
    { time: ago(3), to: 'A', by: 'x' },
    { time: ago(2), from: 'A', to: 'B', by: 'x' },
    { time: ago(1), from: 'B', to: 'A', by: 'x', rollback: true },
  ];

  it('previous is the release current before the current one, by the last promotion to it', () => {
    expect(previousOf(h, 'A')).toBe('B');
    expect(previousOf(h, 'B')).toBe('A');
    expect(previousOf(h.slice(0, 1), 'A')).toBeUndefined();
  });

  it('names the workflow run, or the user and host', () => {
    expect(
      whoRan({
        GITHUB_RUN_ID: '42',
        GITHUB_REPOSITORY: 'ops/template',
        GITHUB_WORKFLOW: 'rebuild',
        GITHUB_ACTOR: 'alice',
      }),
    ).toBe('ops/template rebuild run 42 by alice');
    expect(whoRan({ USER: 'root', SUDO_USER: 'bob' })).toMatch(
      /^bob@.+ \(diskless command line\)$/,
    );
  });
});

describe('retention', () => {
  const none: InUse = { reasons: new Map(), problems: [] };
  const ids = ['R1', 'R2', 'R3', 'R4'];
  const metas = new Map(ids.map((id, i) => [id, { created: ago(100 - i * 10) }]));
  const history: Promotion[] = [
    { time: ago(100), to: 'R1', by: 'x' },
    { time: ago(5), from: 'R1', to: 'R3', by: 'x' },
    { time: ago(60), from: 'R3', to: 'R4', by: 'x' },
  ];

  it('goes by when a release stopped being current, not when it was made', () => {
    const plan = planRetention({
      ids,
      metas,
      history,
      inUse: none,
      keep: 1,
      keepDays: 30,
      now: NOW,
    });
    // R1 left current 5 days ago; R2 was never current and R3 superseded it 80 days ago;
    // R3's last demotion was 60 days ago; R4 is the newest.
    expect(plan.remove).toEqual(['R2', 'R3']);
    expect(plan.keep.get('R1')).toEqual(['current or new within 30 day(s)']);
    expect(plan.keep.get('R4')).toEqual(['among the 1 newest']);
  });

  it('keeps everything named by a signal, and everything when a signal is unreadable', () => {
    const inUse: InUse = { reasons: new Map([['R2', ['ledger: zone-a']]]), problems: [] };
    expect(
      planRetention({ ids, metas, history, inUse, keep: 1, keepDays: 0, now: NOW }).remove,
    ).toEqual(['R1', 'R3']);
    const broken: InUse = { reasons: new Map(), problems: ['ledger/x.json is not a ledger entry'] };
    expect(
      planRetention({ ids, metas, history, inUse: broken, keep: 1, keepDays: 0, now: NOW }).remove,
    ).toEqual([]);
    const all: InUse = { reasons: new Map(), problems: [], all: `${T} is mounted` };
    expect(
      planRetention({ ids, metas, history, inUse: all, keep: 1, keepDays: 0, now: NOW }).remove,
    ).toEqual([]);
  });

  it('keeps a release whose age it cannot tell', () => {
    const plan = planRetention({
      ids: ['R1', 'R2'],
      metas: new Map(),
      history: [],
      inUse: none,
      keep: 1,
      keepDays: 0,
      now: NOW,
    });
    expect(plan.keep.get('R1')).toEqual(['its age is unknown']);
  });
});

describe("rsync's itemized paths", () => {
  it('undoes the \\#ooo escapes, bytes of UTF-8 included', () => {
    expect(itemPath('>f..t...... etc/plain.conf')).toBe('etc/plain.conf');
    expect(itemPath('>f..t...... etc/caf\\#303\\#251 x')).toBe('etc/café x');
    expect(itemPath('>f..t...... new\\#012line')).toBe('new\nline');
  });
});
