/**
 * The provider's reading of the API's answers (both shapes the service was seen to use),
 * what is in use, the drive families, and the health check's notation.
 */
import { describe, expect, it } from 'vitest';
import { serverClaims } from '../../src/drive/claims.js';
import { toServerView } from '../../src/fleet/elasticstack.js';
import { parseHealthCheck } from '../../src/fleet/health.js';
import { artifactsInUse, type ArtifactView } from '../../src/fleet/provider.js';
import { familyOf } from '../../src/upload/family.js';

const S1 = '11111111-1111-4111-8111-111111111111';
const D1 = 'dddddddd-0000-4000-8000-000000000001';

describe('toServerView', () => {
  it('reads a running server with numbers, arrays and its CD devices', () => {
    expect(
      toServerView(
        {
          server: S1,
          name: 'web1',
          status: 'active',
          started: 1764460000,
          tags: ['web', 'canary'],
          'ide:0:0': 'AAAAAAAA-0000-4000-8000-000000000000',
          'ide:0:1': D1.toUpperCase(),
          'ide:0:1:media': 'cdrom',
          'nic:0:dhcp': 'auto',
          'nic:0:dhcp:ip': '10.0.2.15',
        },
        'GET x',
      ),
    ).toEqual({
      id: S1,
      name: 'web1',
      tags: ['web', 'canary'],
      status: 'active',
      running: true,
      started: 1764460000,
      address: '10.0.2.15',
      cds: { 'ide:0:1': D1 },
    });
  });

  it('reads a stopped server with strings, a space-separated list and a static address', () => {
    const v = toServerView(
      {
        server: S1,
        status: 'stopped',
        started: '1764460000',
        tags: 'web db',
        'nic:0:dhcp': '192.0.2.7',
      },
      'GET x',
    );
    expect(v).toMatchObject({
      running: false,
      started: undefined,
      tags: ['web', 'db'],
      address: '192.0.2.7',
      cds: {},
    });
  });

  it('refuses an answer that is not a server, in one line naming the request', () => {
    expect(() => toServerView('<html>', 'GET http://api/servers/info')).toThrow(
      'GET http://api/servers/info: expected a server (a JSON object), got HTML: "<html>"',
    );
    expect(() => toServerView({ name: 'x' }, 'GET y')).toThrow(
      'GET y: expected a server with "server"',
    );
  });
});

describe('what is in use', () => {
  it('reads every claim of a shared drive', () => {
    expect(serverClaims({ claimed: `u:guest:${S1}:ide:0:1 u:guest:s2:ide:0:1` })).toEqual([
      S1,
      's2',
    ]);
    expect(serverClaims({ claimed: undefined })).toEqual([]);
  });

  it('names the servers that run an artifact and those that boot it next', () => {
    const a = (id: string, claimedBy: string[]): ArtifactView => ({
      id,
      name: id,
      release: undefined,
      sha256: undefined,
      family: 'f',
      claimedBy,
    });
    const servers = [
      {
        id: 's1',
        name: 'web1',
        tags: [],
        status: 'active',
        running: true,
        started: 1,
        address: undefined,
        cds: { 'ide:0:1': 'new' },
      },
    ];
    const use = artifactsInUse(servers, [a('old', ['s1']), a('new', [])]);
    expect(Object.fromEntries(use)).toEqual({
      old: { claimedBy: ['web1'], referencedBy: [] },
      new: { claimedBy: [], referencedBy: ['web1'] },
    });
  });

  it('groups standby drives by family', () => {
    expect(familyOf('boot-cd-1a2b3c4d')).toBe('boot-cd');
    expect(familyOf('boot-cd')).toBe('boot-cd');
    expect(familyOf('boot-cd-final')).toBe('boot-cd-final');
  });
});

describe('parseHealthCheck', () => {
  it.each([
    ['tcp:22', { kind: 'tcp', port: 22 }],
    ['none', { kind: 'none' }],
    ['http://{ip}:8080/health', { kind: 'http', url: 'http://{ip}:8080/health' }],
    ['tcp:0', undefined],
    ['tcp:65536', undefined],
    ['http://example/health', undefined],
    ['udp:53', undefined],
  ])('%s', (raw, want) => {
    expect(parseHealthCheck(raw)).toEqual(want);
  });
});
