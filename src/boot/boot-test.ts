/**
 * The boot test: boots an ISO in QEMU against a release served by a userspace NFS server
 * on this machine, once per firmware, and tells whether the client got to its check.
 *
 * What to serve comes from the ISO and the release themselves: the ISO's nfsroot= names
 * the server address and the root's path; the release's etc/fstab names the other NFS
 * mounts (/usr, /home). Each path is served from the same local directory (as on the
 * master) unless `exports` maps it elsewhere; the root is served from `root`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { extractFromIso, listIso } from '../iso/check.js';
import { GRUB_CFG, ISOLINUX_CFG } from '../iso/loaders.js';
import type { Reporter } from '../report.js';
import { FSTAB, fstabMounts } from '../rootfs/fstab.js';
import { privateNamespace, type Namespace } from './namespace.js';
import { startNfsServer, type NfsExport } from './nfs.js';
import type { Processes } from './processes.js';
import { FIRMWARE_NAMES, OVMF_VARS, qemuArgs, type Firmware } from './qemu.js';
import { readLog, reportLines, tail, watchSerial, type BootUntil } from './serial.js';
import { statOrUndefined } from '../files.js';

export interface BootRun {
  iso: string;
  /** The client root served at the ISO's nfsroot path (default: that path itself). */
  root?: string;
  /** Local directories for NFS paths (pseudo -> dir), overriding "the same path". */
  exports?: readonly NfsExport[];
  firmware: readonly Firmware[];
  until: BootUntil;
  /** Limit per boot. */
  timeoutSeconds: number;
  /** Directory for the serial logs and the NFS server's files. */
  work: string;
  memoryMiB?: number;
}

export interface BootResult {
  firmware: Firmware;
  /** Seconds from QEMU's start to the success line. */
  seconds: number;
  report: { key: string; value: string }[];
}

export interface IsoBoot {
  firmware: Firmware[];
  server: string;
  rootPath: string;
}

/** Which firmware the ISO boots on and the NFS root its menus mount. */
export async function readIsoBoot(iso: string, scratch: string): Promise<IsoBoot> {
  if (!(await statOrUndefined(iso))?.isFile()) {
    throw new DisklessError(`${iso}: no such file (expected the ISO from build-iso)`);
  }
  // The listing first: a missing xorriso or an unreadable ISO fails here, with its reason.
  const { files } = await listIso('xorriso', iso);
  const menus = (
    [
      ['bios', ISOLINUX_CFG],
      ['uefi', GRUB_CFG],
    ] as const
  )
    .filter(([, file]) => files.has(`/${file}`))
    .map(([fw, file]) => ({ fw, file, local: path.join(scratch, `${fw}.cfg`) }));
  await extractFromIso(
    'xorriso',
    iso,
    menus.map((m) => [`/${m.file}`, m.local]),
  );
  const firmware: Firmware[] = [];
  const roots = new Map<Firmware, string>();
  for (const { fw, local } of menus) {
    const m = /\bnfsroot=([^\s,:]+):([^\s,]+)/.exec(await readFile(local, 'utf8'));
    if (!m?.[1] || !m[2]) continue;
    firmware.push(fw);
    roots.set(fw, `${m[1]}:${m[2]}`);
  }
  const distinct = [...new Set(roots.values())];
  if (distinct.length === 0) {
    throw new DisklessError(
      `${iso}: no boot menu with nfsroot= found (expected ${ISOLINUX_CFG} or ${GRUB_CFG} from build-iso)`,
    );
  }
  if (distinct.length > 1) {
    throw new DisklessError(
      `${iso}: its boot menus mount different roots (${[...roots].map(([fw, r]) => `${fw}: ${r}`).join(', ')}); expected one nfsroot=`,
    );
  }
  const [server = '', rootPath = ''] = (distinct[0] ?? '').split(':');
  return { firmware, server, rootPath };
}

/** The NFS mounts of a client root's etc/fstab: server and path per mount point. */
export async function fstabNfsMounts(
  root: string,
): Promise<{ server: string; path: string; mountPoint: string }[]> {
  const text = await readFile(path.join(root, FSTAB), 'utf8').catch(() => '');
  return fstabMounts(text)
    .filter((m) => /^nfs4?$/.test(m.type) && m.spec.includes(':'))
    .map((m) => {
      const colon = m.spec.indexOf(':');
      return { server: m.spec.slice(0, colon), path: m.spec.slice(colon + 1), mountPoint: m.file };
    });
}

/** Boots `o.iso` once per firmware against an NFS server started for the test. */
export async function bootTest(
  procs: Processes,
  o: BootRun,
  reporter: Reporter,
): Promise<BootResult[]> {
  await mkdir(o.work, { recursive: true });
  const iso = await readIsoBoot(o.iso, o.work);
  for (const fw of o.firmware) {
    if (!iso.firmware.includes(fw)) {
      throw new DisklessError(
        `${o.iso} has no ${fw} boot menu (it boots on ${iso.firmware.join(', ')}); expected build-iso's boot-mode to include ${fw}`,
      );
    }
  }
  const root = o.root ?? iso.rootPath;
  const overrides = new Map((o.exports ?? []).map((e) => [e.pseudo.replace(/\/+$/, ''), e.dir]));
  const exports: NfsExport[] = [{ pseudo: iso.rootPath, dir: root }];
  for (const m of await fstabNfsMounts(root)) {
    if (m.server !== iso.server) {
      throw new DisklessError(
        `${path.join(root, FSTAB)} mounts ${m.mountPoint} from ${m.server}, but the ISO mounts / from ${iso.server}; the boot test serves one NFS server`,
      );
    }
    const pseudo = m.path.replace(/\/+$/, '');
    exports.push({ pseudo, dir: overrides.get(pseudo) ?? pseudo });
    overrides.delete(pseudo);
  }
  if (overrides.size > 0) {
    throw new DisklessError(
      `exports ${[...overrides.keys()].join(', ')}: not an NFS mount of ${path.join(root, FSTAB)} (it mounts ${
        exports
          .slice(1)
          .map((e) => e.pseudo)
          .join(', ') || 'nothing over NFS'
      }); expected the NFS paths the client mounts`,
    );
  }
  reporter.info(
    `ISO ${o.iso}: boots on ${iso.firmware.join(' and ')}, mounts / from ${iso.server}:${iso.rootPath}`,
  );
  const { ns, nfs } = await reporter.group('Start the NFS server', async () => {
    const ns = await privateNamespace(procs, o.work);
    reporter.info(`private network and mount namespace: holder pid ${ns.holder.pid}`);
    return {
      ns,
      nfs: await startNfsServer(procs, ns, { dir: path.join(o.work, 'nfs'), exports }, reporter),
    };
  });
  try {
    const results: BootResult[] = [];
    for (const firmware of o.firmware) {
      results.push(
        await reporter.group(`Boot with ${FIRMWARE_NAMES[firmware]}`, () =>
          bootOnce(ns, procs, { ...o, firmware, server: iso.server }, reporter),
        ),
      );
    }
    return results;
  } finally {
    await nfs.stop();
    await procs.stop(ns.holder);
  }
}

async function bootOnce(
  ns: Namespace,
  procs: Processes,
  o: Omit<BootRun, 'firmware'> & { firmware: Firmware; server: string },
  reporter: Reporter,
): Promise<BootResult> {
  const serialLog = path.join(o.work, `serial-${o.firmware}.log`);
  await copyFile('/dev/null', serialLog);
  let ovmfVars: string | undefined;
  if (o.firmware === 'uefi') {
    ovmfVars = path.join(o.work, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, ovmfVars).catch(() => {
      throw new DisklessError(`${OVMF_VARS}: not found; install the Debian package ovmf`);
    });
  }
  const args = qemuArgs({
    iso: o.iso,
    firmware: o.firmware,
    serialLog,
    server: o.server,
    ovmfVars,
    memoryMiB: o.memoryMiB,
  });
  const startedAt = Date.now();
  const qemu = await ns.start('qemu', 'qemu-system-x86_64', args, {
    log: path.join(o.work, `qemu-${o.firmware}.log`),
    debianPackage: 'qemu-system-x86',
  });
  reporter.info(`QEMU pid ${qemu.pid}, serial console in ${serialLog}`);
  try {
    const end = await watchSerial({
      log: serialLog,
      qemu,
      until: o.until,
      timeoutMs: o.timeoutSeconds * 1000,
      startedAt,
    });
    if (!end.ok) {
      throw new DisklessError(
        `${o.firmware} boot failed: ${end.why} (after ${end.seconds} s) (serial console: ${serialLog})\n--- the serial console's last lines:\n${tail(await readLog(serialLog))}\n---`,
      );
    }
    reporter.info(`${o.firmware}: the client reached its check in ${end.seconds} s`);
    if (o.until === 'report') {
      // The report unit powers the client off; give it time to, then stop QEMU anyway.
      const deadline = sleep(60_000, 'late' as const, { ref: false });
      if ((await Promise.race([qemu.exited, deadline])) === 'late') {
        reporter.info('the client did not power off within 60 s; stopping QEMU');
      }
    }
    return {
      firmware: o.firmware,
      seconds: end.seconds,
      report: reportLines(await readLog(serialLog)),
    };
  } finally {
    await procs.stop(qemu);
  }
}
