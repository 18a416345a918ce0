/**
 * The boot test on both supported Debian releases (issue 15): a trixie (Debian 13, the
 * current stable) and a bookworm (Debian 12) master each give a client release and two
 * ISOs, the lean one (initramfs-modules: vm, zstd) and the netboot one; each ISO is booted
 * once in QEMU against its release served over NFS, so each release boots with BIOS and
 * with UEFI and each kind of image on both firmwares:
 *
 *   trixie    lean UEFI    netboot BIOS
 *   bookworm  lean BIOS    netboot UEFI
 *
 * The client's report unit (test/e2e/template) says which Debian and kernel it runs, and
 * what the NFS root's network looks like after the boot settled: the interface keeps the
 * address the initramfs got by DHCP, its route, and no network service touched it.
 * Needs root and the Debian packages and sample roots of .ci/run.
 */
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportLines } from '../../src/boot/serial.js';
import type { Firmware } from '../../src/boot/qemu.js';
import { runAction } from '../../src/harness/run-action.js';
import { list } from '../../src/inputs/fields.js';
import { overlay, sampleRoot, tempDir, type Suite } from '../iso/fixture.js';

const repo = path.resolve(import.meta.dirname, '../..');
const SERVER = '10.0.2.100';
type Image = 'lean' | 'netboot';

/** Which firmware boots which image of which release. */
const BOOTS: { suite: Suite; image: Image; firmware: Firmware }[] = [
  { suite: 'trixie', image: 'lean', firmware: 'uefi' },
  { suite: 'trixie', image: 'netboot', firmware: 'bios' },
  { suite: 'bookworm', image: 'lean', firmware: 'bios' },
  { suite: 'bookworm', image: 'netboot', firmware: 'uefi' },
];
const SUITES: Suite[] = ['trixie', 'bookworm'];
const KERNEL_SERIES: Record<Suite, string> = { trixie: '6.12.', bookworm: '6.1.' };
const IMAGE_INPUTS: Record<Image, Record<string, string>> = {
  lean: { 'initramfs-modules': 'vm', 'initramfs-compression': 'zstd' },
  netboot: { 'initramfs-modules': 'netboot' },
};

/** Runs a bundled action through the runner harness; its outputs and rendered log. */
async function action(
  name: string,
  inputs: Record<string, string>,
): Promise<{ outputs: Record<string, string>; log: string }> {
  const run = await runAction({ actionDir: path.join(repo, 'actions', name), inputs });
  const log = run.main.log.join('\n');
  if (run.exitCode !== 0) throw new Error(`${name} failed:\n${log}\n${run.main.stderr}`);
  return { outputs: run.outputs, log };
}

async function settingLines(name: string): Promise<string[]> {
  return list().parse(await readFile(path.join(repo, 'settings', name), 'utf8').catch(() => ''));
}

interface Release {
  root: string;
  isos: Record<Image, { iso: string; size: number; log: string }>;
}
interface Boot {
  seconds: number;
  report: { key: string; value: string }[];
}

const work = { dir: '', removers: [] as (() => void)[] };
const releases = new Map<Suite, Release>();
const boots = new Map<string, Boot | Error>();
const key = (suite: Suite, image: Image) => `${suite} ${image}`;

beforeAll(async () => {
  work.dir = await tempDir('e2e-releases');
  const template = path.join(work.dir, 'template');
  await cp(path.join(repo, 'template'), template, { recursive: true });
  await cp(path.join(repo, 'test/e2e/template'), template, { recursive: true });
  const varDirs = await settingLines('var-dirs');
  await writeFile(
    path.join(template, 'etc/diskless/boot-report.var-dirs'),
    `${varDirs.join('\n')}\n`,
  );

  for (const suite of SUITES) {
    const master = sampleRoot(suite);
    const view = await overlay(master);
    work.removers.push(view.remove);
    const target = path.join(work.dir, suite, 'rootfs');
    const rootfs = await action('build-rootfs', {
      source: view.root,
      target,
      template,
      'state-dir': path.join(work.dir, suite, 'state'),
      'nfs-server': SERVER,
      'client-hostname': `diskless-${suite}`,
      'var-dirs': varDirs.join('\n'),
      'template-values': (await settingLines('template-values')).join('\n'),
      'enable-services': 'diskless-boot-report.service',
    });
    const root = rootfs.outputs.root ?? '';
    const isos = {} as Release['isos'];
    for (const image of ['lean', 'netboot'] as const) {
      const built = await action('build-iso', {
        root,
        sysroot: view.root,
        'nfs-root': `${SERVER}:${root}`,
        cmdline: 'panic=10',
        output: path.join(work.dir, suite, `${image}.iso`),
        'cache-dir': '/var/cache/diskless/initramfs',
        cache: 'local',
        ...IMAGE_INPUTS[image],
      });
      isos[image] = {
        iso: built.outputs.iso ?? '',
        size: Number(built.outputs.size),
        log: built.log,
      };
    }
    releases.set(suite, { root, isos });
    // /usr comes from the sample root itself (nfs-ganesha cannot serve an overlayfs); the
    // example template gives clients a /home of their own (tmpfs), so none is exported.
    const exports = `${path.join(view.root, 'usr')}=${path.join(master, 'usr')}`;
    for (const b of BOOTS.filter((x) => x.suite === suite)) {
      try {
        const boot = await action('boot-test', {
          iso: isos[b.image].iso,
          root,
          exports,
          firmware: b.firmware,
          until: 'report',
          'boot-timeout': '400',
          'work-dir': path.join(work.dir, suite, `boot-${b.image}`),
        });
        const lines = boot.log
          .split('\n')
          .filter((l) => l.trimStart().startsWith(`${b.firmware}: `));
        boots.set(key(suite, b.image), {
          seconds: Number(boot.outputs[`${b.firmware}-seconds`]),
          report: reportLines(lines.join('\n')),
        });
      } catch (error) {
        boots.set(key(suite, b.image), error as Error);
      }
    }
  }
}, 45 * 60_000);

afterAll(async () => {
  for (const remove of work.removers) remove();
  if (work.dir) await rm(work.dir, { recursive: true, force: true });
});

function booted(suite: Suite, image: Image): Boot {
  const b = boots.get(key(suite, image));
  if (!b) throw new Error(`${suite} ${image}: the boot did not run`);
  if (b instanceof Error) throw b;
  return b;
}

function facts(suite: Suite, image: Image, k: string): string[] {
  return booted(suite, image)
    .report.filter((l) => l.key === k)
    .map((l) => l.value.trim());
}

function fact(suite: Suite, image: Image, k: string): string {
  const values = facts(suite, image, k);
  expect(values, `one "${k}" line in the ${suite} ${image} report`).toHaveLength(1);
  return values[0] ?? '';
}

describe.each(BOOTS)(
  '$suite, $image image, booted with $firmware',
  ({ suite, image, firmware }) => {
    it('runs the Debian release and kernel of its master, systemd running, nothing failed', () => {
      const b = booted(suite, image);
      process.stderr.write(
        `${suite} ${image} ${firmware}: booted in ${String(b.seconds)} s (client uptime ${fact(suite, image, 'uptime')} s), ISO ${String(releases.get(suite)?.isos[image].size)} bytes\n`,
      );
      expect(fact(suite, image, 'os')).toBe(suite);
      expect(fact(suite, image, 'kernel').startsWith(KERNEL_SERIES[suite])).toBe(true);
      expect(fact(suite, image, 'hostname')).toBe(`diskless-${suite}`);
      expect(fact(suite, image, 'failed')).toBe('');
      expect(fact(suite, image, 'system')).toBe('running');
    });

    it('mounts / read-only over NFS from its release', () => {
      const root = facts(suite, image, 'mount')
        .map((m) => m.split(' '))
        .filter((f) => f[1] === '/')
        .pop();
      expect(root?.[0]).toBe(`${SERVER}:${releases.get(suite)?.root ?? ''}`);
      expect(root?.[2]).toBe('nfs');
      expect(root?.[3]?.split(',')).toEqual(expect.arrayContaining(['ro', 'vers=3']));
    });

    it("keeps the NFS root's interface up with the address the initramfs got, untouched", () => {
      const [device = '', address = ''] = fact(suite, image, 'net-boot').split(' ');
      expect(device).toMatch(/^\w+$/);
      expect(address).toMatch(/^10\.0\.2\.\d+$/);
      expect(facts(suite, image, 'net-iface')).toEqual([`${device} up carrier=1`]);
      expect(fact(suite, image, 'net-addresses').split(' ')).toContain(address);
      expect(fact(suite, image, 'net-routes')).toBe(device);
      expect(facts(suite, image, 'net-service')).toEqual([
        'systemd-networkd.service inactive',
        'networking.service inactive',
        'NetworkManager.service inactive',
        'dhcpcd.service inactive',
      ]);
      for (const unit of fact(suite, image, 'net-units').split(' ').filter(Boolean)) {
        expect(unit).toMatch(/=inactive$/);
      }
      expect(fact(suite, image, 'net-journal-lines')).toBe('0');
    });

    it('was booted from an image holding the modules it was meant for', () => {
      const loaded = fact(suite, image, 'modules').split(' ');
      expect(loaded).toEqual(expect.arrayContaining(['virtio_net', 'nfs', 'sunrpc']));
      const log = releases.get(suite)?.isos[image].log ?? '';
      expect(log).toMatch(/Initramfs checked \(unmkinitramfs\): scripts\/nfs, nfsmount, ipconfig/);
      expect(log).toContain(image === 'lean' ? 'MODULES=list COMPRESS=zstd' : 'MODULES=netboot');
    });
  },
);

describe.each(SUITES)('the %s images', (suite) => {
  it('the lean ISO is much smaller than the netboot one', () => {
    const isos = releases.get(suite)?.isos;
    expect(isos?.lean.size).toBeGreaterThan(0);
    expect(isos?.lean.size ?? Infinity).toBeLessThan((isos?.netboot.size ?? 0) * 0.75);
  });
});
