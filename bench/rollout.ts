/**
 * The rollout's API overhead per server (issue 13): a rolling rollout of N state-only
 * servers in the local cloud, each with a real TCP listener on its loopback address as an
 * instant health check, batch 1 and batch 5. Figures: wall time per server and API
 * requests per server, against a named baseline: the three calls a rollout cannot do
 * without (servers/<uuid>/set, servers/<uuid>/reset, servers/<uuid>/info) made directly
 * with one keep-alive connection, one server after the other.
 *
 * The same for kind proxmox (issue 16) against the PVE emulator over HTTPS (20 ms
 * tasks): the rollout of N state-only VMs against the calls it cannot do without per VM
 * (read the config for its digest, set the CD with it, reset and poll its task, read the
 * status and the agent's address), made directly with our client, one VM after the other.
 *
 *   npm run bench -- rollout [--servers N] [--runs N]
 *
 * The emulator runs in this process (its request counter is the measure); boots with real
 * machines are the e2e's business, not this one's.
 */
import { Pool } from 'undici';
import { flag, median } from './lib/measure.js';
import { alice, basic, start } from '../test/emulator/helpers.js';
import { bootDrive, bootServer, R1, R2, runRollout, tcpListeners } from '../test/rollout/fleet.js';
import { pveFleet, runPveRollout } from '../test/rollout/pve-fleet.js';
import { client } from '../test/proxmox/helpers.js';
import { readConfig, repointCd, restartVm, vmState } from '../src/proxmox/index.js';

const SERVERS = Number(flag('--servers') ?? '20');
const RUNS = Number(flag('--runs') ?? '3');

async function fleet() {
  const s = await start();
  const e = s.emulator;
  const d1 = await bootDrive(e, 'aaaaaaaa', R1);
  const d2 = await bootDrive(e, 'bbbbbbbb', R2);
  const ips = Array.from({ length: SERVERS }, (_, i) => `127.0.1.${10 + i}`);
  const ids: string[] = [];
  for (const [i, ip] of ips.entries()) {
    ids.push(await bootServer(e, { name: `n${String(i).padStart(3, '0')}`, cd: d1, ip }));
  }
  const health = await tcpListeners(ips);
  return { s, e, d1, d2, ids, health };
}

/** The rollout step itself: seconds and requests per server. */
async function rolloutRun(batch: number): Promise<{ perServer: number; requests: number }> {
  const f = await fleet();
  try {
    const before = f.e.stats.requests;
    const t0 = performance.now();
    const r = await runRollout(f.e, {
      drive: f.d2,
      'batch-size': String(batch),
      'health-check': `tcp:${f.health.port}`,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.error) throw r.error;
    if (r.outputs['servers-restarted'].split(' ').length !== SERVERS) {
      throw new Error(`not every server was restarted: ${r.outputs['servers-restarted']}`);
    }
    return { perServer: seconds / SERVERS, requests: (f.e.stats.requests - before) / SERVERS };
  } finally {
    f.health.close();
    await f.s.stop();
  }
}

/** The baseline: set, reset and info per server, directly, one after the other. */
async function baselineRun(): Promise<{ perServer: number; requests: number }> {
  const f = await fleet();
  const pool = new Pool(new URL(f.e.url).origin, { connections: 1 });
  const headers = { authorization: basic(alice), accept: 'application/json' };
  const req = async (method: 'GET' | 'POST', p: string, body?: string) => {
    const r = await pool.request({
      method,
      path: `/${p}`,
      headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
      body: body ?? (method === 'POST' ? '' : undefined),
    });
    await r.body.dump();
    if (r.statusCode >= 300) throw new Error(`${method} ${p}: ${r.statusCode}`);
  };
  try {
    const before = f.e.stats.requests;
    const t0 = performance.now();
    for (const id of f.ids) {
      await req(
        'POST',
        `servers/${id}/set`,
        JSON.stringify({ 'ide:0:1': f.d2, 'ide:0:1:media': 'cdrom' }),
      );
      await req('POST', `servers/${id}/reset`);
      await req('GET', `servers/${id}/info`);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { perServer: seconds / SERVERS, requests: (f.e.stats.requests - before) / SERVERS };
  } finally {
    await pool.close();
    f.health.close();
    await f.s.stop();
  }
}

async function measure(name: string, work: () => Promise<{ perServer: number; requests: number }>) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await work());
  return {
    name,
    ms: median(runs.map((r) => r.perServer * 1000)),
    requests: median(runs.map((r) => r.requests)),
  };
}

const base = await measure('baseline: set + reset + info, direct', baselineRun);
const results = [
  await measure('rollout, batch 1, health tcp', () => rolloutRun(1)),
  await measure('rollout, batch 5, health tcp', () => rolloutRun(5)),
];
console.log(
  `rollout of ${SERVERS} state-only servers, median of ${RUNS} runs (emulator in-process)`,
);
console.log(
  `  ${base.name.padEnd(38)} ${base.ms.toFixed(2)} ms/server  ${base.requests.toFixed(1)} requests/server`,
);
for (const r of results) {
  console.log(
    `  ${r.name.padEnd(38)} ${r.ms.toFixed(2)} ms/server  ${r.requests.toFixed(1)} requests/server` +
      `  (x${(r.ms / base.ms).toFixed(2)} time, x${(r.requests / base.requests).toFixed(2)} requests vs baseline)`,
  );
}

/** A Proxmox fleet of SERVERS state-only VMs with agent addresses and TCP listeners there. */
async function pveVms() {
  const ips = Array.from({ length: SERVERS }, (_, i) => `127.0.2.${10 + i}`);
  const f = await pveFleet(
    ips.map((ip, i) => ({ vmid: 1000 + i, name: `v${String(i).padStart(3, '0')}`, ip })),
  );
  const health = await tcpListeners(ips);
  return { f, health };
}

async function pveRolloutRun(batch: number): Promise<{ perServer: number; requests: number }> {
  const { f, health } = await pveVms();
  try {
    const before = f.s.emulator.stats.requests;
    const t0 = performance.now();
    const r = await runPveRollout(f.s, {
      iso: f.iso2,
      'batch-size': String(batch),
      'health-check': `tcp:${health.port}`,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.error) throw r.error;
    if (r.outputs['servers-restarted'].split(' ').length !== SERVERS) {
      throw new Error(`not every VM was restarted: ${r.outputs['servers-restarted']}`);
    }
    return {
      perServer: seconds / SERVERS,
      requests: (f.s.emulator.stats.requests - before) / SERVERS,
    };
  } finally {
    health.close();
    await f.stop();
  }
}

async function pveBaselineRun(): Promise<{ perServer: number; requests: number }> {
  const { f, health } = await pveVms();
  const api = client(f.s);
  try {
    const before = f.s.emulator.stats.requests;
    const t0 = performance.now();
    for (let i = 0; i < SERVERS; i++) {
      const vm = { node: 'pve', vmid: 1000 + i };
      const cfg = await readConfig(api, vm);
      await repointCd(api, vm, 'ide2', f.iso2, cfg.digest);
      await restartVm(api, vm, 'reset');
      await vmState(api, vm);
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      perServer: seconds / SERVERS,
      requests: (f.s.emulator.stats.requests - before) / SERVERS,
    };
  } finally {
    await api.close();
    health.close();
    await f.stop();
  }
}

const pveBase = await measure('baseline: config, set, reset+task, status', pveBaselineRun);
const pveResults = [
  await measure('rollout, batch 1, health tcp', () => pveRolloutRun(1)),
  await measure('rollout, batch 5, health tcp', () => pveRolloutRun(5)),
];
console.log(
  `\nkind proxmox: rollout of ${SERVERS} state-only VMs over HTTPS, 20 ms tasks, median of ${RUNS} runs (emulator in-process)`,
);
console.log(
  `  ${pveBase.name.padEnd(38)} ${pveBase.ms.toFixed(2)} ms/VM  ${pveBase.requests.toFixed(1)} requests/VM`,
);
for (const r of pveResults) {
  console.log(
    `  ${r.name.padEnd(38)} ${r.ms.toFixed(2)} ms/VM  ${r.requests.toFixed(1)} requests/VM` +
      `  (x${(r.ms / pveBase.ms).toFixed(2)} time, x${(r.requests / pveBase.requests).toFixed(2)} requests vs baseline)`,
  );
}
