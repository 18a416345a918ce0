/**
 * The health gate of a rollout: a server counts as healthy once a TCP port of its address
 * accepts a connection (`tcp:22`) or an HTTP URL with `{ip}` (its address) or `{name}` (its
 * name, for servers the API shows no address of, found by DNS) answers below 400, tried
 * again every `intervalMs` until the timeout. `none` only waits for the server to run.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

export type HealthCheck =
  { kind: 'none' } | { kind: 'tcp'; port: number } | { kind: 'http'; url: string };

/** Parses `none`, `tcp:<port>` or an http(s) URL containing `{ip}` or `{name}`; undefined when neither. */
export function parseHealthCheck(raw: string): HealthCheck | undefined {
  if (raw === 'none') return { kind: 'none' };
  const tcp = /^tcp:(\d{1,5})$/.exec(raw);
  if (tcp) {
    const port = Number(tcp[1]);
    return port >= 1 && port <= 65535 ? { kind: 'tcp', port } : undefined;
  }
  if (/^https?:\/\//.test(raw) && (raw.includes('{ip}') || raw.includes('{name}'))) {
    try {
      new URL(raw.replaceAll('{ip}', '127.0.0.1').replaceAll('{name}', 'server'));
      return { kind: 'http', url: raw };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function describeCheck(c: HealthCheck): string {
  return c.kind === 'none' ? 'none' : c.kind === 'tcp' ? `tcp:${c.port}` : c.url;
}

/** Whether the check needs the server's address (not for none, nor a URL with only {name}). */
export function needsAddress(c: HealthCheck): boolean {
  return c.kind === 'tcp' || (c.kind === 'http' && c.url.includes('{ip}'));
}

/** Where a check looks: the server's address (may be unknown) and its name. */
export interface Target {
  ip: string | undefined;
  name: string;
}

/** One try: undefined when healthy, else why not. */
async function probe(c: HealthCheck, at: Target, timeoutMs: number): Promise<string | undefined> {
  const ip = at.ip ?? '';
  if (c.kind === 'none') return undefined;
  if (c.kind === 'tcp') {
    return new Promise((resolve) => {
      const socket = connect({ host: ip, port: c.port, timeout: timeoutMs });
      const done = (why: string | undefined) => {
        socket.destroy();
        resolve(why);
      };
      socket.once('connect', () => {
        done(undefined);
      });
      socket.once('timeout', () => {
        done(`no answer on ${ip}:${c.port}`);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        done(`${ip}:${c.port}: ${e.code ?? e.message}`);
      });
    });
  }
  const url = c.url
    .replaceAll('{ip}', ip.includes(':') ? `[${ip}]` : ip)
    .replaceAll('{name}', encodeURIComponent(at.name));
  try {
    const res = await request(url, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    await res.body.dump();
    return res.statusCode < 400 ? undefined : `${url}: HTTP ${res.statusCode}`;
  } catch (error) {
    return `${url}: ${(error as { code?: string }).code ?? String(error)}`;
  }
}

/**
 * Waits until the check passes at `at`; resolves undefined when it did, or the last reason
 * it did not when `timeoutMs` ran out.
 */
export async function waitHealthy(
  c: HealthCheck,
  at: Target,
  o: { timeoutMs: number; intervalMs: number },
): Promise<string | undefined> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const why = await probe(c, at, Math.max(100, Math.min(5_000, left)));
    if (why === undefined) return undefined;
    if (Date.now() + o.intervalMs > deadline) return why;
    await sleep(o.intervalMs);
  }
}
