/**
 * The local cloud in the boot test: the emulator with its QEMU runner, CDs uploaded over
 * its API, and the consoles of its servers read boot by boot.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BOOT_OK, readLog, reportLines, tail } from '../../src/boot/serial.js';
import type { Emulator } from '../../src/emulator/index.js';
import { call, createDrive, properties } from '../emulator/helpers.js';
import { tcpGreeting } from '../emulator/tcp.js';

const CHUNK = 4 * 2 ** 20;

/** A shared drive holding the ISO, written over the API in 4 MiB chunks. */
export async function uploadCd(e: Emulator, name: string, iso: string): Promise<string> {
  const data = await readFile(iso);
  const uuid = await createDrive(e, `name ${name}\nsize ${data.length}\nclaim:type shared`);
  for (let at = 0; at < data.length; at += CHUNK) {
    const r = await call(e, `drives/${uuid}/write/${at}`, { body: data.subarray(at, at + CHUNK) });
    if (r.status !== 204) throw new Error(`writing ${name} at ${at}: ${r.status} ${r.text}`);
  }
  return uuid;
}

/** One object's info as text keys; fails on anything but 200. */
export async function info(
  e: Emulator,
  object: string,
  uuid: string,
): Promise<Record<string, string>> {
  const r = await call(e, `${object}/${uuid}/info`);
  if (r.status !== 200) throw new Error(`${object}/${uuid}/info: ${r.status} ${r.text}`);
  return properties(r.text);
}

/** The reports of each boot on a console, in order (one per DISKLESS-BOOT-OK). */
export async function bootReports(console: string): Promise<Map<string, string>[]> {
  const text = await readLog(console);
  const boots = text.split(BOOT_OK).slice(0, -1);
  return boots.map((b) => new Map(reportLines(b).map((l) => [l.key, l.value])));
}

/** Waits until the console shows `count` finished boots; fails with its end after `limitMs`. */
export async function untilBoots(console: string, count: number, limitMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await bootReports(console)).length >= count) return (Date.now() - started) / 1000;
    if (Date.now() - started > limitMs) {
      throw new Error(
        `${console}: ${count} boot(s) not reported within ${limitMs / 1000} s; its end:\n${tail(await readLog(console))}`,
      );
    }
    await sleep(500);
  }
}

/**
 * How long a server's health greeting may take. It takes 0.2 to 0.4 s, but a guest under
 * QEMU without KVM, on two cores beside another guest's boot, has once in a few runs not
 * answered within 10 s right after a rollout whose own check had just reached it.
 */
const GREETING_LIMIT_MS = 60_000;

/**
 * A server's TCP health greeting on port 22, from this machine. When none comes, the
 * error adds what this machine knows of the address (its neighbour entry, a ping) and
 * how the server's console ends, to tell a network fault from a stalled guest.
 */
export async function greeting(ip: string, console: string): Promise<string> {
  try {
    return await tcpGreeting(ip, 22, GREETING_LIMIT_MS);
  } catch (error) {
    const sh = (command: string) =>
      spawnSync('sh', ['-c', command], { encoding: 'utf8' }).stdout.trim();
    throw new Error(
      `${(error as Error).message}; neighbour: ${sh(`ip neigh show ${ip}`) || 'none'}; ping: ${sh(`ping -c 2 -W 1 ${ip} 2>&1 | tail -2 | tr '\\n' ' '`)}; console's end:\n${tail(await readLog(console))}`,
    );
  }
}

/** Waits until a server's status is `status`; fails with the last one after `limitMs`. */
export async function untilStatus(
  e: Emulator,
  server: string,
  status: string,
  limitMs: number,
): Promise<void> {
  const started = Date.now();
  for (;;) {
    const now = (await info(e, 'servers', server)).status;
    if (now === status) return;
    if (Date.now() - started > limitMs) {
      throw new Error(
        `server ${server}: still ${String(now)}, not ${status}, after ${limitMs / 1000} s`,
      );
    }
    await sleep(500);
  }
}
