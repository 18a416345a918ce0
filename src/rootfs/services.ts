/**
 * Server-only services are masked in the client root, offline, with
 * `systemctl --root` (masking, not disabling: it also stops socket and D-Bus activation),
 * and client units are enabled the same way. A SysV-only script (an /etc/init.d script
 * without a unit) is masked too (systemd's SysV generator honours the mask) and loses its
 * rc?.d links, as the 2011 `insserv -r` did; enabling one gives it start links.
 *
 * Without copy-usr the client root has an empty /usr, where Debian keeps its units: the
 * master's unit files are copied in for the systemctl calls and removed again.
 */
import { cp, lstat, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError, inputError } from '../errors.js';
import type { Reporter } from '../report.js';
import { run } from '../process/run.js';
import { type ClientTree } from './tree.js';
import { lstatOrUndefined } from '../files.js';

/** Masked when the client root has them; `mask-services` adds to this list. */
export const DEFAULT_MASKS: readonly string[] = [
  // NFS server: the master serves the clients' root.
  'nfs-server.service',
  'nfs-kernel-server.service',
  'nfs-mountd.service',
  'rpc-svcgssd.service',
  // DHCP, DNS and TFTP servers of the master's network.
  'isc-dhcp-server.service',
  'isc-dhcp-server6.service',
  'kea-dhcp4-server.service',
  'kea-dhcp6-server.service',
  'dnsmasq.service',
  'named.service',
  'bind9.service',
  'unbound.service',
  'tftpd-hpa.service',
  // A read-only root cannot upgrade itself: the master's upgrades reach it.
  'unattended-upgrades.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  // Disabled on the clients by the 2011 recipe.
  'exim4.service',
  'postgresql.service',
];

const UNIT_DIRS = ['etc/systemd/system', 'lib/systemd/system', 'usr/lib/systemd/system'];
const SUFFIXES = /\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$/;
/** A unit name; never one starting with - (systemctl would read it as an option). */
export const UNIT_NAME = /^(?!-)[\w:@.\\-]+$/;

export function unitName(name: string): string {
  if (!UNIT_NAME.test(name)) {
    throw new DisklessError(
      `unit ${JSON.stringify(name)}: expected a systemd unit name such as nfs-server.service`,
    );
  }
  return SUFFIXES.test(name) ? name : `${name}.service`;
}

/** Where `unit` is defined in the root: 'unit', 'sysv' (an init.d script only) or none. */
async function findUnit(root: string, unit: string): Promise<'unit' | 'sysv' | undefined> {
  for (const dir of UNIT_DIRS) {
    if (await lstatOrUndefined(path.join(root, dir, unit))) return 'unit';
  }
  const base = unit.replace(/\.service$/, '');
  if (base !== unit && (await lstatOrUndefined(path.join(root, 'etc/init.d', base)))) return 'sysv';
  return undefined;
}

/** The Actions runner's own units (svc.sh names them actions.runner.<...>.service). */
async function runnerUnits(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const dir of UNIT_DIRS) {
    const names = await readdir(path.join(root, dir)).catch(() => [] as string[]);
    found.push(...names.filter((n) => n.startsWith('actions.runner.') && n.endsWith('.service')));
  }
  return [...new Set(found)].sort();
}

/** Everything under etc/systemd/system: path -> type and link target. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    const names = await readdir(path.join(root, rel)).catch(() => [] as string[]);
    for (const name of names) {
      const child = `${rel}/${name}`;
      const st = await lstat(path.join(root, child));
      if (st.isSymbolicLink()) out.set(child, `-> ${await readlink(path.join(root, child))}`);
      else if (st.isDirectory()) {
        out.set(child, 'dir');
        await walk(child);
      } else out.set(child, `file ${st.ino}`);
    }
  }
  await walk('etc/systemd/system');
  return out;
}

/** `systemctl --root` on the client root: works offline, on its files only. */
async function systemctl(
  root: string,
  verb: 'mask' | 'enable',
  units: readonly string[],
): Promise<void> {
  await run('systemctl', [`--root=${root}`, '--quiet', verb, '--', ...units], {
    debianPackage: 'systemd',
  });
}

async function removeRcLinks(tree: ClientTree, base: string): Promise<string[]> {
  const removed: string[] = [];
  const etc = await readdir(tree.abs('etc')).catch(() => [] as string[]);
  for (const rc of etc.filter((n) => /^rc[0-6S]\.d$/.test(n)).sort()) {
    const names = await readdir(tree.abs(`etc/${rc}`)).catch(() => [] as string[]);
    for (const name of names) {
      if (/^[SK]\d\d/.test(name) && name.slice(3) === base) {
        await tree.remove(`etc/${rc}/${name}`);
        removed.push(`/etc/${rc}/${name}`);
      }
    }
  }
  return removed;
}

export interface ServicesResult {
  masked: string[];
  enabled: string[];
}

export async function configureServices(
  tree: ClientTree,
  o: { source: string; copyUsr: boolean; mask: readonly string[]; enable: readonly string[] },
  reporter: Reporter,
): Promise<ServicesResult> {
  const root = tree.root;
  // Debian keeps its units in /usr/lib/systemd/system: give systemctl the master's.
  let borrowedUsr = false;
  const usrUnits = path.join(o.source, 'usr/lib/systemd/system');
  if (
    !o.copyUsr &&
    (await lstatOrUndefined(usrUnits))?.isDirectory() &&
    !(await tree.stat('usr/lib'))
  ) {
    await cp(usrUnits, path.join(root, 'usr/lib/systemd/system'), {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
    });
    borrowedUsr = true;
  }
  const before = await snapshot(root);
  try {
    const wanted = new Map<string, 'default' | 'input'>();
    for (const unit of DEFAULT_MASKS) wanted.set(unit, 'default');
    for (const unit of await runnerUnits(root)) wanted.set(unit, 'default');
    for (const name of o.mask) wanted.set(unitName(name), 'input');
    const masks: string[] = [];
    const sysv: string[] = [];
    for (const [unit, why] of wanted) {
      const where = await findUnit(root, unit);
      if (!where && why === 'default') continue;
      if (!where) {
        reporter.warning(`mask-services: ${unit} is not in the client root; masked anyway`);
      }
      masks.push(unit);
      if (where === 'sysv') sysv.push(unit.replace(/\.service$/, ''));
    }
    for (const unit of masks) {
      // systemctl refuses to mask over a unit file in /etc (the runner's lives there).
      const own = `etc/systemd/system/${unit}`;
      const st = await tree.stat(own);
      if (st && !(st.isSymbolicLink() && (await readlink(tree.abs(own))) === '/dev/null')) {
        await tree.remove(own);
      }
    }
    if (masks.length > 0) {
      await systemctl(root, 'mask', masks);
      reporter.info(`Masked ${masks.join(', ')}`);
    }
    for (const base of sysv) {
      const removed = await removeRcLinks(tree, base);
      if (removed.length > 0)
        reporter.info(`Removed the SysV links of ${base}: ${removed.join(', ')}`);
    }

    const units: string[] = [];
    const sysvEnable: string[] = [];
    for (const name of o.enable) {
      const unit = unitName(name);
      const where = await findUnit(root, unit);
      if (!where) {
        throw inputError(
          'enable-services',
          name,
          `a unit of the client root, and it has no ${unit}`,
        );
      }
      if (where === 'sysv') sysvEnable.push(unit.replace(/\.service$/, ''));
      else units.push(unit);
    }
    if (units.length > 0) {
      await systemctl(root, 'enable', units);
      reporter.info(`Enabled ${units.join(', ')}`);
    }
    for (const base of sysvEnable) {
      await removeRcLinks(tree, base);
      for (const level of [2, 3, 4, 5]) {
        await tree.symlink(`etc/rc${level}.d/S01${base}`, `../init.d/${base}`);
      }
      reporter.info(`Enabled the SysV script ${base} in runlevels 2-5`);
    }
    return { masked: masks, enabled: [...units, ...sysvEnable] };
  } finally {
    if (borrowedUsr) await rm(path.join(root, 'usr/lib'), { recursive: true, force: true });
    const after = await snapshot(root);
    for (const [rel, what] of after) if (before.get(rel) !== what) tree.managed.add(rel);
    for (const rel of before.keys()) if (!after.has(rel)) tree.managed.add(rel);
  }
}
