/**
 * Waiting for a Proxmox worker task: poll …/tasks/{upid}/status on the node the UPID
 * names until it stopped; `OK` or `WARNINGS: n` is success, anything else is the
 * task's failure text, reported with the last lines of its log. A 400 right after the
 * task was made is retried (the status file may not be there yet).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DisklessError } from '../errors.js';
import type { PveApi } from './api.js';
import { PveApiError } from './api-error.js';

export interface TaskStatus {
  status: string;
  exitstatus?: string;
  type?: string;
}

export interface WaitOptions {
  /** Longest wait between polls; default 1 s, as the Terraform provider polls. The first
   * polls come sooner (from 100 ms, growing by half each time): most tasks end quickly. */
  pollMs?: number;
  /** Give up after this long; default 30 min. */
  timeoutMs?: number;
}

/** The node a UPID names (`UPID:<node>:…`), or a one-line error. */
export function upidNode(upid: string): string {
  const m = /^UPID:([^:]+):[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:([^:]*):([^:]*):([^:]+):$/.exec(
    upid,
  );
  if (!m)
    throw new DisklessError(
      `Proxmox answered ${JSON.stringify(upid)}: expected a task ID (UPID:node:…)`,
    );
  return m[1] ?? '';
}

export function taskSucceeded(exitstatus: string | undefined): boolean {
  return exitstatus === 'OK' || /^WARNINGS: \d+$/.test(exitstatus ?? '');
}

async function lastLog(api: PveApi, node: string, upid: string): Promise<string> {
  try {
    const lines = await api.call<{ t: string }[]>(
      'GET',
      `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/log`,
      { start: 0, limit: 0 },
    );
    return lines
      .map((l) => l.t)
      .filter((t) => !/^TASK (ERROR|OK)/.test(t))
      .slice(-3)
      .join(' / ');
  } catch {
    return '';
  }
}

/** Waits for the task; throws a one-line error with its failure text if it failed. */
export async function waitTask(
  api: PveApi,
  upid: string,
  what: string,
  o: WaitOptions = {},
): Promise<TaskStatus> {
  const node = upidNode(upid);
  const deadline = performance.now() + (o.timeoutMs ?? 30 * 60_000);
  const path = `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/status`;
  let early400 = 3;
  const longest = o.pollMs ?? 1000;
  let delay = Math.min(100, longest);
  const pause = async () => {
    await sleep(delay);
    delay = Math.min(longest, Math.ceil(delay * 1.5));
  };
  for (;;) {
    let status: TaskStatus;
    try {
      status = await api.call<TaskStatus>('GET', path);
    } catch (error) {
      if (error instanceof PveApiError && error.status === 400 && early400-- > 0) {
        await pause();
        continue;
      }
      throw error;
    }
    if (status.status === 'stopped') {
      if (taskSucceeded(status.exitstatus)) return status;
      const log = await lastLog(api, node, upid);
      throw new DisklessError(
        `${what}: the Proxmox task failed: ${status.exitstatus ?? 'unexpected status'}${log ? ` (log: ${log})` : ''} [${upid}]`,
      );
    }
    if (performance.now() > deadline) {
      throw new DisklessError(
        `${what}: the Proxmox task ${upid} still runs after ${Math.round((o.timeoutMs ?? 1_800_000) / 1000)} s`,
      );
    }
    await pause();
  }
}
