/**
 * Retention of a family's ISO files on a storage: deletes `<family>-<sha8>.iso` files
 * that no VM's CD-ROM references (current or pending), keeping the current artifact and
 * the newest `keepPrevious` others for rollback. Proxmox itself would delete a file in
 * use without a word (its DELETE checks no config), so the check is here, just before.
 */
import { DisklessError } from '../errors.js';
import type { Reporter } from '../report.js';
import type { PveApi } from './api.js';
import { waitTask, type WaitOptions } from './tasks.js';
import { listIsos } from './upload.js';
import { isosInUse } from './vms.js';

export interface PruneOptions {
  node: string;
  storage: string;
  family: string;
  /** The volid just shipped: always kept. */
  current: string | undefined;
  /** Files kept besides the current and those in use, newest first (default 1). */
  keepPrevious?: number;
  dryRun: boolean;
  wait?: WaitOptions;
}

export interface PruneResult {
  deleted: string[];
  kept: string[];
  /** volid → the VMIDs whose CD references it. */
  inUse: Map<string, number[]>;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function pruneFamily(
  api: PveApi,
  o: PruneOptions,
  reporter: Reporter,
): Promise<PruneResult> {
  const keepPrevious = o.keepPrevious ?? 1;
  if (!Number.isInteger(keepPrevious) || keepPrevious < 0) {
    throw new DisklessError(
      `Invalid keep-previous ${keepPrevious}: expected a whole number, 0 or more`,
    );
  }
  const pattern = new RegExp(
    `^${escapeRegExp(o.storage)}:iso/${escapeRegExp(o.family)}-[0-9a-f]{8}\\.iso$`,
  );
  const family = (await listIsos(api, o.node, o.storage))
    .filter((i) => pattern.test(i.volid))
    .sort((a, b) => Number(b.ctime ?? 0) - Number(a.ctime ?? 0) || b.volid.localeCompare(a.volid));
  const inUse = await isosInUse(api);
  const kept: string[] = [];
  const deleted: string[] = [];
  let previous = 0;
  for (const item of family) {
    const users = inUse.get(item.volid);
    if (item.volid === o.current || users) {
      kept.push(item.volid);
      if (users) reporter.info(`keep ${item.volid}: in use by VM ${users.join(', ')}`);
      continue;
    }
    if (previous < keepPrevious) {
      previous++;
      kept.push(item.volid);
      reporter.info(`keep ${item.volid}: the previous image, for a rollback`);
      continue;
    }
    deleted.push(item.volid);
  }
  // Checked again right before deleting: a rollout may have pointed a VM at one since.
  const recheck = deleted.length > 0 && !o.dryRun ? await isosInUse(api) : inUse;
  for (const volid of deleted) {
    if (o.dryRun) {
      reporter.info(`dry run: would delete ${volid}`);
      continue;
    }
    const users = recheck.get(volid);
    if (users) {
      kept.push(volid);
      reporter.warning(`not deleting ${volid}: VM ${users.join(', ')} started to use it`);
      continue;
    }
    const upid = await api.call<string>(
      'DELETE',
      `/nodes/${encodeURIComponent(o.node)}/storage/${encodeURIComponent(o.storage)}/content/${encodeURIComponent(volid)}`,
    );
    await waitTask(api, upid, `delete of ${volid}`, o.wait);
    reporter.info(`deleted ${volid}`);
  }
  return { deleted: deleted.filter((v) => !kept.includes(v)), kept, inUse };
}
