// The pure rules of standby mode's drive families: which drives belong, which is live,
// who holds a drive (both claim formats on record), and what retention keeps.
import { describe, expect, it } from 'vitest';
import type { DriveInfo } from '../../src/drive/api.js';
import { serverClaims } from '../../src/drive/claims.js';
import { inFamily, liveDrive, standbyName } from '../../src/upload/family.js';
import { judgeFamily } from '../../src/upload/retention.js';

const SERVER = '3f2a1b0c-1111-4222-8333-944445555666';
const OTHER = '7e6d5c4b-aaaa-4bbb-8ccc-ddddeeeeffff';

function drive(name: string, o: Partial<DriveInfo> & { uploaded?: string } = {}): DriveInfo {
  return {
    uuid: `uuid-${name}`,
    name,
    size: 1,
    claimType: 'shared',
    claimed: undefined,
    imaging: undefined,
    meta: o.uploaded ? { 'diskless-uploaded': o.uploaded } : {},
    writeRequests: 0,
    writeBytes: 0,
    ...o,
  };
}

describe('drive families', () => {
  it('names a standby drive from the family and the image digest', () => {
    expect(standbyName('boot', 'c35db6fa58f98542ab')).toBe('boot-c35db6fa');
  });

  it('holds the bare name and <name>-<8 hex>, nothing else', () => {
    expect(inFamily(drive('boot'), 'boot')).toBe(true);
    expect(inFamily(drive('boot-c35db6fa'), 'boot')).toBe(true);
    expect(inFamily(drive('boot-C35DB6FA'), 'boot')).toBe(false);
    expect(inFamily(drive('boot-c35db6f'), 'boot')).toBe(false);
    expect(inFamily(drive('boot-old-c35db6fa'), 'boot')).toBe(false);
    expect(inFamily(drive('bootx-c35db6fa'), 'boot')).toBe(false);
  });

  it('reads server claims in the recorded and the documented format, leaving copies out', () => {
    const d = drive('boot', {
      claimed: `u:guest:${SERVER}:ide:0:1 ${OTHER} u:imaging:uuid-x u:guest:${SERVER}:ide:0:0`,
    });
    expect(serverClaims(d)).toEqual([SERVER, OTHER]);
    expect(serverClaims(drive('boot', { claimed: 'u:imaging:uuid-x' }))).toEqual([]);
  });

  it('takes as live the newest claimed drive, else the newest upload', () => {
    const old = drive('boot-00000001', {
      uploaded: '2026-01-01T00:00:00Z',
      claimed: `u:guest:${SERVER}:ide:0:1`,
    });
    const newer = drive('boot-00000002', { uploaded: '2026-02-01T00:00:00Z' });
    const legacy = drive('boot');
    expect(liveDrive([legacy, newer, old])?.name).toBe('boot-00000001');
    expect(liveDrive([legacy, newer, old], old.uuid)?.name).toBe('boot-00000002');
    expect(liveDrive([legacy])?.name).toBe('boot');
    expect(liveDrive([])).toBeUndefined();
  });
});

describe('retention', () => {
  it('keeps the current, the previous, the claimed and the keep newest; lets the rest go', () => {
    const family = [1, 2, 3, 4, 5].map((i) =>
      drive(`boot-0000000${i}`, { uploaded: `2026-01-0${i}T00:00:00Z` }),
    );
    const [d1, d2, d3, d4, d5] = family as [DriveInfo, DriveInfo, DriveInfo, DriveInfo, DriveInfo];
    d1.claimed = `u:guest:${SERVER}:ide:0:1`;
    const verdicts = judgeFamily(family, { current: d5.uuid, previous: d2.uuid, keep: 2 });
    const gone = verdicts.filter((v) => !v.keep).map((v) => v.drive.name);
    expect(gone).toEqual([d3.name]);
    const why = new Map(verdicts.map((v) => [v.drive.name, v.keep]));
    expect(why.get(d5.name)).toContain('the drive just written');
    expect(why.get(d4.name)).toContain('one of the 2 newest');
    expect(why.get(d2.name)).toContain('the previous drive (rollback)');
    expect(why.get(d1.name)).toContain('claimed');
  });

  it('ranks the drive just written first even before its record says so', () => {
    const family = [
      drive('boot-0000000a', { uploaded: '2026-01-02T00:00:00Z' }),
      drive('boot-0000000b'),
    ];
    const verdicts = judgeFamily(family, {
      current: 'uuid-boot-0000000b',
      previous: undefined,
      keep: 1,
    });
    expect(verdicts.filter((v) => !v.keep).map((v) => v.drive.name)).toEqual(['boot-0000000a']);
  });
});
