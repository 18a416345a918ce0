// The bundled rollout action with kind proxmox through the runner-faithful harness,
// against the Proxmox VE emulator over real HTTPS (its certificate pinned) with
// state-only VMs and loopback TCP listeners as their health: outputs, the summary, a
// bad input's one line, and the token secret kept out of everything it prints.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/harness/run-action.js';
import { everythingShown, failureLine } from '../helpers/actions.js';
import { root } from '../proxmox/helpers.js';
import { tcpListeners } from '../rollout/fleet.js';
import { cdOf, pveFleet, type PveFleet } from '../rollout/pve-fleet.js';

const dir = path.resolve(import.meta.dirname, '../../actions/rollout');

let f: PveFleet;
let health: { port: number; close(): void };
beforeAll(async () => {
  f = await pveFleet([
    { vmid: 101, name: 'web1', ip: '127.0.0.61' },
    { vmid: 102, name: 'web2', ip: '127.0.0.62' },
  ]);
  health = await tcpListeners(['127.0.0.61', '127.0.0.62']);
});
afterAll(async () => {
  health.close();
  await f.stop();
});

const valid = (extra: Record<string, string> = {}) => ({
  kind: 'proxmox',
  'api-url': f.s.emulator.url.replace('/api2/json', ''),
  'token-id': root.id,
  'token-secret': root.secret,
  node: 'pve',
  iso: f.iso2,
  'tls-fingerprint': f.s.emulator.fingerprint,
  'health-check': `tcp:${health.port}`,
  ...extra,
});

describe('rollout bundle, kind proxmox', () => {
  it('fails with one line naming a bad input, the secret masked first', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid({ device: 'ide:0:1' }) });
    expect(run.exitCode).toBe(1);
    expect(failureLine(run)).toMatch(/^Input "device": got "ide:0:1"; expected a Proxmox CD drive/);
    expect(run.main.stdout.split('\n')[0]).toMatch(/^::add-mask::/);
    expect(everythingShown(run)).not.toContain(root.secret);
  });

  it('moves both VMs onto the new ISO, then back (the rollback), never showing the token secret', async () => {
    const run = await runAction({ actionDir: dir, inputs: valid(), debug: true });
    expect(run.exitCode, run.main.log.join('\n')).toBe(0);
    expect(run.outputs).toMatchObject({
      'servers-updated': 'web1 web2',
      'servers-restarted': 'web1 web2',
      'previous-drive': f.iso1,
      'failed-server': '',
    });
    expect(run.summary).toMatch(/<td>ISO<\/td><td>diskless-[0-9a-f]{8}\.iso /);
    expect(await cdOf(f.s, 101)).toBe(f.iso2);
    expect(await cdOf(f.s, 102)).toBe(f.iso2);
    expect(everythingShown(run)).not.toContain(root.secret);

    const back = await runAction({ actionDir: dir, inputs: valid({ iso: f.iso1 }) });
    expect(back.exitCode, back.main.log.join('\n')).toBe(0);
    expect(back.outputs['previous-drive']).toBe(f.iso2);
    expect(await cdOf(f.s, 101)).toBe(f.iso1);
    expect(await cdOf(f.s, 102)).toBe(f.iso1);
  });
});
