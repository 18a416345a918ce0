/**
 * A small Proxmox fleet in the PVE emulator for the rollout tests and bench: state-only
 * QEMU guests (a guest agent reporting a loopback address, so a real TCP or HTTP
 * listener on it stands for the service) whose CD-ROMs boot the family's old ISO, and
 * the old and new ISO uploaded with our own client over HTTPS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sha256File } from '../../src/files.js';
import { artifactName, uploadIsoImage } from '../../src/proxmox/index.js';
import type { PveVmSpec } from '../../src/emulator/pve/index.js';
import { client, isoFile, root, startPve, type StartedPve } from '../proxmox/helpers.js';
import { pve } from '../emulator/pve-helpers.js';
import { runRolloutStep, type Run } from './fleet.js';
import { recordingReporter } from '../../src/report.js';

export interface PveFleet {
  s: StartedPve;
  /** The old and the new ISO's volume ids (family `diskless`). */
  iso1: string;
  iso2: string;
  stop(): Promise<void>;
}

export interface PveMember {
  vmid: number;
  name: string;
  ip: string;
  tags?: string[];
  pool?: string;
  stopped?: boolean;
}

/** The emulator with ISOs 1 and 2 on `local` and the VMs booting ISO 1 from ide2. */
export async function pveFleet(members: PveMember[], size = 64 * 1024): Promise<PveFleet> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pve-fleet-'));
  const files = [await isoFile(dir, 'r1.iso', size, 1), await isoFile(dir, 'r2.iso', size, 2)];
  const names = await Promise.all(
    files.map(async (f) => artifactName('diskless', await sha256File(f))),
  );
  const [iso1, iso2] = names.map((n) => `local:iso/${n}`) as [string, string];
  const vms: PveVmSpec[] = members.map((m) => ({
    vmid: m.vmid,
    name: m.name,
    config: { ide2: `${iso1},media=cdrom`, boot: 'order=ide2;net0', agent: '1', memory: 512 },
    running: !m.stopped,
    address: m.ip,
    tags: m.tags,
    pool: m.pool,
  }));
  const s = await startPve({ vms });
  const api = client(s);
  try {
    for (const image of files) {
      await uploadIsoImage(
        api,
        { image, family: 'diskless', node: 'pve', storage: 'local', dryRun: false },
        recordingReporter(),
      );
    }
  } finally {
    await api.close();
  }
  return {
    s,
    iso1,
    iso2,
    async stop() {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The first field of a VM's ide2, as its config shows it now. */
export async function cdOf(s: StartedPve, vmid: number): Promise<string> {
  const r = await pve(s, 'GET', `/nodes/pve/qemu/${vmid}/config`);
  const ide2 = (r.json?.data as Record<string, unknown> | undefined)?.ide2;
  return typeof ide2 === 'string' ? (ide2.split(',')[0] ?? '') : '';
}

/** The VM's config as the API shows it. */
export async function configOf(s: StartedPve, vmid: number): Promise<Record<string, unknown>> {
  const r = await pve(s, 'GET', `/nodes/pve/qemu/${vmid}/config`);
  return (r.json?.data ?? {}) as Record<string, unknown>;
}

/** The rollout step with kind proxmox, as the action and the CLI run it (raw inputs). */
export async function runPveRollout(s: StartedPve, inputs: Record<string, string>): Promise<Run> {
  return runRolloutStep({
    kind: 'proxmox',
    'api-url': s.emulator.url.replace(/\/api2\/json$/, ''),
    'token-id': root.id,
    'token-secret': root.secret,
    node: 'pve',
    'tls-fingerprint': s.emulator.fingerprint,
    ...inputs,
  });
}
