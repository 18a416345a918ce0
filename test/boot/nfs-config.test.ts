import { describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { ganeshaConfig, NFS_CLIENT_PORTS } from '../../src/boot/nfs.js';
import { thrown } from '../helpers/errors.js';

/** The top-level blocks of a ganesha.conf: name and body (blocks do not nest beyond FSAL). */
function blocks(conf: string): { name: string; body: string }[] {
  return [...conf.matchAll(/^(\w+) \{\n([\s\S]*?)^\}$/gm)].map((m) => ({
    name: m[1] ?? '',
    body: m[2] ?? '',
  }));
}

/** `Key = value;` settings of a block body. */
function settings(body: string): Record<string, string> {
  return Object.fromEntries(
    [...body.matchAll(/^\s*(\w+) = (.*);$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']),
  );
}

const EXPORTS = [
  { pseudo: '/srv/diskless/current', dir: '/tmp/release' },
  { pseudo: '/usr', dir: '/srv/usr-copy' },
];

describe('ganeshaConfig', () => {
  const conf = ganeshaConfig(EXPORTS, { stateDir: '/tmp/work/nfs' });

  it('has one EXPORT block per export, read-only NFSv3 over TCP without root squash', () => {
    const exports = blocks(conf).filter((b) => b.name === 'EXPORT');
    expect(exports).toHaveLength(2);
    const [first, second] = exports.map((b) => settings(b.body));
    expect(first).toMatchObject({
      Export_Id: '1',
      Path: '"/tmp/release"',
      Pseudo: '"/srv/diskless/current"',
      Access_Type: 'RO',
      Squash: 'No_Root_Squash',
      Transports: 'TCP',
    });
    expect(second).toMatchObject({
      Export_Id: '2',
      Path: '"/srv/usr-copy"',
      Pseudo: '"/usr"',
      Access_Type: 'RO',
      Squash: 'No_Root_Squash',
      Transports: 'TCP',
    });
    for (const s of [first, second]) expect(s?.Protocols?.split(/,\s*/)).toContain('3');
  });

  it('serves NFS and MOUNT on the ports the forwards expect, TCP only, loopback at most', () => {
    const core = blocks(conf).find((b) => b.name === 'NFS_CORE_PARAM');
    expect(core).toBeDefined();
    const s = settings(core?.body ?? '');
    expect(s).toMatchObject({
      NFS_Port: '2049',
      MNT_Port: '20048',
      Enable_UDP: 'false',
      Mount_Path_Pseudo: 'true',
    });
    expect(s.Protocols?.split(/,\s*/)).toContain('3');
    // ganesha runs in a namespace with only its loopback: it either binds 127.0.0.1 or
    // every address there (no Bind_addr); never an address of the master.
    expect(s.Bind_addr ?? '127.0.0.1').toBe('127.0.0.1');
    expect(NFS_CLIENT_PORTS).toContain(Number(s.NFS_Port));
    expect(NFS_CLIENT_PORTS).toContain(Number(s.MNT_Port));
  });

  it('has no grace period and keeps its recovery state inside the state directory', () => {
    const v4 = blocks(conf).find((b) => b.name === 'NFSV4');
    const s = settings(v4?.body ?? '');
    expect(s.Graceless).toBe('true');
    expect(s.RecoveryRoot).toBe('"/tmp/work/nfs/recovery"');
  });

  it('has no EXPORT block without exports', () => {
    const empty = ganeshaConfig([], { stateDir: '/tmp/s' });
    expect(blocks(empty).map((b) => b.name)).not.toContain('EXPORT');
    expect(blocks(empty).map((b) => b.name)).toContain('NFS_CORE_PARAM');
  });

  it.each(['/srv/my"release', '/srv/back\\slash', '/srv/new\nline'])(
    'refuses the export path %j, naming it',
    (dir) => {
      const error = thrown(DisklessError, () =>
        ganeshaConfig([{ pseudo: '/srv/diskless/current', dir }], { stateDir: '/tmp/s' }),
      );
      expect(error).toBeInstanceOf(DisklessError);
      expect(error.message).toContain(JSON.stringify(dir));
    },
  );

  it('refuses a pseudo path with a double quote', () => {
    expect(() =>
      ganeshaConfig([{ pseudo: '/srv/"x"', dir: '/tmp/release' }], { stateDir: '/tmp/s' }),
    ).toThrow(/"\/srv\/\\"x\\""/);
  });
});
