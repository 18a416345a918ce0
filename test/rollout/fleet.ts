/**
 * A small fleet in the local cloud for the rollout tests and bench: state-only servers
 * with static addresses in 127.0.0.0/8 (all loopback on Linux), so a real TCP or HTTP
 * listener on a server's address stands for the service the health check asks for.
 */
import { createServer as httpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as tcpServer, type AddressInfo, type Server } from 'node:net';
import type { Emulator } from '../../src/emulator/index.js';
import { recordingReporter } from '../../src/report.js';
import type { RolloutReport } from '../../src/rollout/options.js';
import { RolloutFailure } from '../../src/rollout/rollout.js';
import { steps } from '../../src/steps.js';
import { alice, call, createDrive, properties } from '../emulator/helpers.js';

export const R1 = '20261101T000000Z';
export const R2 = '20261102T000000Z';

/** A boot drive of the family boot-cd, recording the release its ISO boots. */
export function bootDrive(e: Emulator, suffix: string, release: string): Promise<string> {
  return createDrive(
    e,
    `name boot-cd-${suffix}\nsize 1M\nclaim:type shared\nuser:diskless-release ${release}\nuser:diskless-sha256 ${suffix.repeat(8)}`,
  );
}

/** A running persistent server booting `cd` at ide:0:1, with a static loopback address. */
export async function bootServer(
  e: Emulator,
  o: { name: string; cd: string; ip: string; tags?: string; stopped?: boolean },
): Promise<string> {
  const body = [
    `name ${o.name}`,
    'cpu 1000',
    'mem 256',
    'persistent true',
    `ide:0:1 ${o.cd}`,
    'ide:0:1:media cdrom',
    'boot ide:0:1',
    `nic:0:dhcp ${o.ip}`,
    o.tags ? `tags ${o.tags}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  const r = await call(e, o.stopped ? 'servers/create/stopped' : 'servers/create', { body });
  if (r.status !== 200) throw new Error(`server create: ${r.status} ${r.text}`);
  return properties(r.text).server ?? '';
}

export async function serverInfo(e: Emulator, uuid: string): Promise<Record<string, string>> {
  return properties((await call(e, `servers/${uuid}/info`)).text);
}

/** Server UUIDs holding a claim on the drive (running from it). */
export async function claimedBy(e: Emulator, drive: string): Promise<string[]> {
  const claimed = properties((await call(e, `drives/${drive}/info`)).text).claimed ?? '';
  return claimed
    .split(' ')
    .filter(Boolean)
    .map((c) => c.split(':')[2] ?? '');
}

/** TCP listeners on the given addresses, all on one port (found free on the first). */
export async function tcpListeners(ips: string[]): Promise<{ port: number; close(): void }> {
  const servers: Server[] = [];
  let port = 0;
  for (const ip of ips) {
    const s = tcpServer((socket) => socket.end());
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, ip, () => {
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    servers.push(s);
  }
  return {
    port,
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

/** An HTTP listener on `ip` whose answer `handler` decides (per request, so it can ask the cloud). */
export async function httpListener(
  ip: string,
  handler: (req: IncomingMessage) => Promise<number>,
): Promise<{ port: number; requests: number; close(): void }> {
  const state = {
    port: 0,
    requests: 0,
    close: () => {
      s.close();
      s.closeAllConnections();
    },
  };
  const s = httpServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests += 1;
    void handler(req).then((status) => {
      res.writeHead(status).end(String(status));
    });
  });
  await new Promise<void>((resolve) => {
    s.listen(0, ip, () => {
      resolve();
    });
  });
  state.port = (s.address() as AddressInfo).port;
  return state;
}

export interface Run {
  outputs: RolloutReport['outputs'];
  summary: [string, string][];
  lines: string[];
  error: Error | undefined;
}

/** The rollout step as the action and the CLI run it (raw inputs through the schema). */
export async function runRollout(e: Emulator, inputs: Record<string, string>): Promise<Run> {
  return runRolloutStep({
    'api-url': e.url,
    'api-user': alice.user,
    'api-key': alice.key,
    ...inputs,
  });
}

/** The rollout step on raw inputs; a failed step's outputs and summary come with its error. */
export async function runRolloutStep(raw: Record<string, string>): Promise<Run> {
  const reporter = recordingReporter(undefined, { indent: true });
  const { lines } = reporter;
  try {
    const report = await steps.rollout.start((n) => raw[n], reporter, process.env);
    return { ...report, lines, error: undefined };
  } catch (error) {
    // A stopped rollout carries what it did; an input error has nothing.
    const report = error instanceof RolloutFailure ? error.report : undefined;
    return {
      outputs: report?.outputs ?? ({} as RolloutReport['outputs']),
      summary: report?.summary ?? [],
      lines,
      error: error as Error,
    };
  }
}
