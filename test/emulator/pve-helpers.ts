/** Shared set-up for the Proxmox VE emulator tests: a fresh data dir, tokens, HTTPS calls. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import {
  startPveEmulator,
  type PveEmulator,
  type PveEmulatorOptions,
  type PveToken,
} from '../../src/emulator/pve/index.js';

export const root: PveToken = { id: 'root@pam!ci', secret: 'root-token-secret' };
/** A token with only what listing and VM users have: no upload, no delete, no CD change. */
export const auditor: PveToken = {
  id: 'audit@pve!ro',
  secret: 'auditor-secret',
  privileges: ['VM.Audit', 'Datastore.Audit'],
};

export interface StartedPve {
  emulator: PveEmulator;
  dataDir: string;
  /** Verifies the emulator's own certificate. */
  agent: Agent;
  stop(): Promise<void>;
}

/** Two VMs on node pve: 101 running with an agent address, 102 stopped. */
export const TWO_VMS: PveEmulatorOptions['vms'] = [
  {
    vmid: 101,
    name: 'client-a',
    config: { ide2: 'none,media=cdrom', boot: 'order=ide2;net0', agent: '1', memory: 1024 },
    running: true,
    address: '10.0.0.11',
    tags: ['diskless'],
  },
  { vmid: 102, name: 'client-b', config: { ide2: 'none,media=cdrom', memory: 1024 } },
];

export async function startPve(extra: Partial<PveEmulatorOptions> = {}): Promise<StartedPve> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pve-emulator-test-'));
  const emulator = await startPveEmulator({
    dataDir: dir,
    tokens: [root, auditor],
    authFailureDelayMs: 20,
    taskMs: 20,
    vms: TWO_VMS,
    ...extra,
  });
  const agent = new Agent({ connect: { ca: emulator.certificate } });
  return {
    emulator,
    dataDir: dir,
    agent,
    async stop() {
      await agent.close();
      await emulator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function tokenHeader(t: PveToken): string {
  return `PVEAPIToken=${t.id}=${t.secret}`;
}

export interface PveAnswer {
  status: number;
  statusText: string;
  json: Record<string, unknown> | undefined;
  body: string;
}

/** One API call below /api2/json, as root unless `as` says otherwise (null: no token). */
export async function pve(
  s: StartedPve,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  apiPath: string,
  o: { form?: Record<string, string>; as?: PveToken | null; headers?: Record<string, string> } = {},
): Promise<PveAnswer> {
  const who = o.as === undefined ? root : o.as;
  const res = await request(`${s.emulator.url}${apiPath}`, {
    method,
    dispatcher: s.agent,
    headers: {
      ...(who ? { authorization: tokenHeader(who) } : {}),
      ...(o.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...o.headers,
    },
    body: o.form ? new URLSearchParams(o.form).toString() : undefined,
  });
  const body = await res.body.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(body) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, statusText: res.statusText, json, body };
}

/** Polls a task until it stopped; its status object. */
export async function waitTask(s: StartedPve, upid: string): Promise<Record<string, unknown>> {
  const node = upid.split(':')[1] ?? '';
  for (;;) {
    const r = await pve(s, 'GET', `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
    const data = r.json?.data as Record<string, unknown> | undefined;
    if (r.status !== 200 || !data) throw new Error(`task status: ${r.status} ${r.statusText}`);
    if (data.status === 'stopped') return data;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
