/**
 * The boot test (npm run test:e2e, run by .ci/run; not part of npm test): the workflow's
 * pipeline on a copy of the sample master root with planted secrets and a server-only
 * daemon, then the ISO booted in QEMU with BIOS (SeaBIOS) and UEFI (OVMF) against the
 * release served over NFS. The client's report unit (test/e2e/template) prints what it
 * sees on the serial console; the assertions are about the booted client.
 *
 * Releases as the workflow makes them: R1 (the example template alone) is published and
 * current; R2 (with the report unit) is staged and its ISO pinned to releases/R2, so the
 * report boots happen while current points at R1. Then R2 is promoted, rolled back with
 * promote previous, and R1's kept ISO is booted to its login prompt, which names R1.
 * Needs root and the Debian packages of .ci/run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../../src/files.js';
import { runAction } from '../../src/harness/run-action.js';
import { list } from '../../src/inputs/fields.js';
import { reportLines } from '../../src/boot/serial.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Firmware } from '../../src/boot/qemu.js';
import { overlay, sampleRoot, tempDir } from '../iso/fixture.js';
import { startQemuRunner, type QemuRunner } from '../../src/emulator/qemu-runner.js';
import type { Emulator } from '../../src/emulator/index.js';
import { alice, call, properties, start as startCloud, type Started } from '../emulator/helpers.js';
import { tcpGreeting } from '../emulator/tcp.js';
import { startPveEmulator, type PveEmulator } from '../../src/emulator/pve/index.js';
import { machineId } from '../../src/emulator/pve/vms.js';
import { PveApi, readConfig, repointCd, restartVm, vmState } from '../../src/proxmox/index.js';
import { bootReports, greeting, info, untilBoots, untilStatus, uploadCd } from './cloud.js';

const repo = path.resolve(import.meta.dirname, '../..');
const SERVER = '10.0.2.100';
const SERVER_UNIT = 'diskless-e2e-server.service';
/** How long a restarted server's boot report may follow its health check (it runs after multi-user.target). */
const REPORT_LAG = 5 * 60_000;
const SECRET = `diskless-e2e-master-secret-${String(process.pid)}-${String(Date.now())}`;
/** Master secrets that must not exist on the client at all. */
const PLANTED = ['/etc/default/elastichosts', '/root/.ssh/id_ed25519'];
/** The master's ssh host key: the client has its own at this path. */
const MASTER_HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
const TEST_VAR_DIRS = [
  'lib/diskless-e2e nobody:nogroup 0700',
  'cache/diskless-e2e/app daemon 0750',
];

interface Built {
  master: string;
  copy: string;
  target: string;
  /** R2's root (the report boots) and the ids of R1 and R2. */
  release: string;
  r1: string;
  r2: string;
  /** Where current pointed while the report boots ran. */
  currentDuringBoot: string;
  r1Iso: Record<string, string>;
  /** build-iso's inputs besides root, nfs-root and output. */
  isoInputs: Record<string, string>;
  /** build-rootfs's inputs besides template and publish, and R2's template. */
  rootfsInputs: Record<string, string>;
  template: string;
  iso: string;
  isoSha256: string;
  exports: string;
  work: string;
  varDirs: string[];
  masterMachineId: string;
  masterHostKey: string;
  masterHostKeySha256: string;
}

/** Lines of a settings file, as the input of the same name reads them. */
async function settingLines(name: string): Promise<string[]> {
  return list().parse(await readFile(path.join(repo, 'settings', name), 'utf8').catch(() => ''));
}

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

/** A writable copy of the sample root, as a master: secrets, host keys, a server daemon. */
async function plantMaster(copy: string): Promise<void> {
  await mkdir(path.join(copy, 'etc/default'), { recursive: true });
  await writeFile(
    path.join(copy, 'etc/default/elastichosts'),
    `EHURI=https://api.example.net/\nEHAUTH=user:${SECRET}\n`,
    { mode: 0o600 },
  );
  for (const key of ['etc/ssh/ssh_host_ed25519_key', 'root/.ssh/id_ed25519']) {
    await mkdir(path.dirname(path.join(copy, key)), { recursive: true, mode: 0o700 });
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      SECRET,
      '-f',
      path.join(copy, key),
    ]);
  }
  const units = path.join(copy, 'etc/systemd/system');
  await writeFile(
    path.join(units, SERVER_UNIT),
    '[Unit]\nDescription=A server-only daemon of the master\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n',
  );
  await symlink(
    `/etc/systemd/system/${SERVER_UNIT}`,
    path.join(units, 'multi-user.target.wants', SERVER_UNIT),
  );
}

let built: Built;
let removeCopy: (() => void) | undefined;
interface Boot {
  seconds: number;
  report: { key: string; value: string }[];
}
const boots = new Map<Firmware, Boot>();
let bootError: Error | undefined;

beforeAll(async () => {
  const master = sampleRoot();
  const view = await overlay(master);
  removeCopy = view.remove;
  const copy = view.root;
  await plantMaster(copy);
  const work = await tempDir('e2e');
  const target = path.join(work, 'rootfs');

  // The example template, the report unit, and the report's lists.
  const template = path.join(work, 'template');
  await cp(path.join(repo, 'template'), template, { recursive: true });
  await cp(path.join(repo, 'test/e2e/template'), template, { recursive: true });
  const varDirs = [...(await settingLines('var-dirs')), ...TEST_VAR_DIRS];
  const lists = { 'var-dirs': varDirs, units: [SERVER_UNIT], absent: PLANTED };
  for (const [name, lines] of Object.entries(lists)) {
    await writeFile(
      path.join(template, `etc/diskless/boot-report.${name}`),
      `${lines.join('\n')}\n`,
    );
  }

  // R1: what the workflow's gate boots, the example template alone; published, so current.
  const common = {
    source: copy,
    target,
    'state-dir': path.join(work, 'state'),
    'nfs-server': SERVER,
    'client-hostname': 'diskless-e2e',
    'var-dirs': varDirs.join('\n'),
    'template-values': (await settingLines('template-values')).join('\n'),
    'mask-services': SERVER_UNIT,
    'enable-services': 'diskless-boot-report.service',
  };
  const isoInputs = {
    sysroot: copy,
    cmdline: 'panic=10',
    'cache-dir': '/var/cache/diskless/initramfs',
    cache: 'local',
  };
  /** An ISO pinned to its release, kept beside it as the workflow keeps it. */
  const pinnedIso = async (id: string) =>
    (
      await action('build-iso', {
        ...isoInputs,
        root: path.join(target, 'releases', id),
        'nfs-root': `${SERVER}:${target}/releases/${id}`,
        output: path.join(target, 'releases', `${id}.iso`),
      })
    ).outputs;
  const r1Build = await action('build-rootfs', {
    ...common,
    template: path.join(repo, 'template'),
    'enable-services': '',
  });
  const r1 = r1Build.outputs.release ?? '';
  const r1Iso = await pinnedIso(r1);

  // R2: the report unit added; staged (publish false), so current stays at R1.
  const rootfs = await action('build-rootfs', { ...common, template, publish: 'false' });
  const r2 = rootfs.outputs.release ?? '';
  const release = rootfs.outputs.root ?? '';
  const iso = await pinnedIso(r2);
  // /usr of the master copy comes from the sample root itself (the copy did not change
  // it; nfs-ganesha cannot serve an overlayfs). /home is the clients' own tmpfs.
  const exports = [`${path.join(copy, 'usr')}=${path.join(master, 'usr')}`].join('\n');
  built = {
    master,
    copy,
    target,
    release,
    r1,
    r2,
    currentDuringBoot: '',
    r1Iso,
    isoInputs,
    rootfsInputs: common,
    template,
    iso: iso.iso ?? '',
    isoSha256: iso.sha256 ?? '',
    exports,
    work,
    varDirs,
    masterMachineId: (await readFile(path.join(copy, 'etc/machine-id'), 'utf8')).trim(),
    masterHostKey:
      (await readFile(path.join(copy, `${MASTER_HOST_KEY}.pub`), 'utf8')).split(' ')[1] ?? '',
    masterHostKeySha256: sha256(await readFile(path.join(copy, MASTER_HOST_KEY))),
  };

  // The bundled boot-test action: one NFS server, both boots in sequence. A failed boot
  // fails every test below with the action's log (the end of the serial console in it).
  try {
    built.currentDuringBoot = await readlink(path.join(target, 'current'));
    const boot = await action('boot-test', {
      iso: built.iso,
      root: release,
      exports,
      firmware: 'both',
      until: 'report',
      'boot-timeout': '300',
      'work-dir': path.join(work, 'boot'),
    });
    for (const fw of ['bios', 'uefi'] as const) {
      const lines = boot.log.split('\n').filter((l) => l.trimStart().startsWith(`${fw}: `));
      const report = reportLines(lines.join('\n'));
      boots.set(fw, { seconds: Number(boot.outputs[`${fw}-seconds`]), report });
    }
    expect(boot.outputs.booted).toBe('bios,uefi');
  } catch (error) {
    bootError = error as Error;
  }
}, 20 * 60_000);

afterAll(async () => {
  removeCopy?.();
  if (built.work) await rm(built.work, { recursive: true, force: true });
});

function booted(fw: Firmware): Boot {
  const r = boots.get(fw);
  if (!r) throw bootError ?? new Error(`${fw}: the boot did not run`);
  return r;
}

function facts(fw: Firmware, key: string): string[] {
  return booted(fw)
    .report.filter((l) => l.key === key)
    .map((l) => l.value);
}

function fact(fw: Firmware, key: string): string {
  const values = facts(fw, key);
  expect(values, `one "${key}" line in the ${fw} report`).toHaveLength(1);
  return values[0] ?? '';
}

function mount(fw: Firmware, dir: string): { spec: string; type: string; options: string[] } {
  const line = facts(fw, 'mount')
    .map((v) => v.split(' '))
    .filter((f) => f[1] === dir)
    .pop();
  expect(line, `${dir} is mounted in the ${fw} client`).toBeDefined();
  const [spec = '', , type = '', options = ''] = line ?? [];
  return { spec, type, options: options.split(',') };
}

describe.each(['bios', 'uefi'] as const)('the client booted with %s', (fw) => {
  it('reached its report with systemd running and nothing failed', () => {
    const r = booted(fw);
    process.stderr.write(
      `${fw}: booted in ${String(r.seconds)} s (client uptime ${fact(fw, 'uptime')} s)\n`,
    );
    expect(fact(fw, 'hostname')).toBe('diskless-e2e');
    expect(facts(fw, 'failed-log')).toEqual([]);
    expect(fact(fw, 'failed').trim()).toBe('');
    expect(fact(fw, 'system')).toBe('running');
  });

  it('mounts / read-only over NFS from the path of the release its ISO is pinned to', () => {
    const root = mount(fw, '/');
    expect(root.type).toBe('nfs');
    expect(root.spec).toBe(`${SERVER}:${built.target}/releases/${built.r2}`);
    expect(root.options).toContain('ro');
    expect(root.options).toContain('vers=3');
    expect(facts(fw, 'write')).toContain('/ read-only');
  });

  it('reports from inside the staged release while current points at the published one', () => {
    expect(fact(fw, 'release')).toBe(built.r2);
    expect(built.currentDuringBoot).toBe(`releases/${built.r1}`);
    expect(built.r1).not.toBe(built.r2);
  });

  it("mounts /usr read-only over NFS from the master, and a /home of its own, not the master's", () => {
    const usr = mount(fw, '/usr');
    expect(usr).toMatchObject({ type: 'nfs', spec: `${SERVER}:${path.join(built.copy, 'usr')}` });
    expect(usr.options).toContain('ro');
    expect(mount(fw, '/home')).toMatchObject({ type: 'tmpfs' });
    expect(facts(fw, 'write')).toEqual(
      expect.arrayContaining(['/usr read-only', '/home writable']),
    );
  });

  it('has writable tmpfs /var and /tmp, /var populated with every var-dirs entry', () => {
    for (const dir of ['/var', '/tmp']) {
      const m = mount(fw, dir);
      expect(m.type).toBe('tmpfs');
      expect(m.options).toContain('rw');
      expect(facts(fw, 'write')).toContain(`${dir} writable`);
    }
    expect(Number(fact(fw, 'var-entries'))).toBeGreaterThan(20);
    const seen = new Map(
      facts(fw, 'var-dir').map((v) => {
        const [dir = '', owner = '', mode = ''] = v.split(' ');
        return [dir, `${owner} ${mode}`];
      }),
    );
    const passwdGroup: Record<string, string> = {
      nobody: 'nogroup',
      daemon: 'daemon',
      root: 'root',
    };
    for (const line of built.varDirs) {
      const [dir = '', owner = 'root', mode = '0755'] = line.split(/\s+/);
      const [user = '', group = passwdGroup[user] ?? ''] = owner.split(':');
      expect(seen.get(dir), `/var/${dir}`).toBe(
        `${user}:${group} ${parseInt(mode, 8).toString(8)}`,
      );
    }
  });

  it('has the masked server-only service masked and not running', () => {
    expect(fact(fw, 'unit')).toBe(`${SERVER_UNIT} masked inactive`);
  });

  it('has a transient machine id of its own and its own ssh host key', () => {
    const id = fact(fw, 'machine-id');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(id).not.toBe(built.masterMachineId);
    expect(mount(fw, '/etc/machine-id').type).toBe('tmpfs'); // systemd's transient id
    const keys = facts(fw, 'ssh-host-key');
    const ed25519 = keys.find((k) => k.startsWith('ssh_host_ed25519_key.pub '));
    expect(ed25519).toBeDefined();
    expect(ed25519?.split(' ')[1]).not.toBe(built.masterHostKey);
    const privateKey = facts(fw, 'ssh-host-private-key').find((k) =>
      k.startsWith('ssh_host_ed25519_key '),
    );
    expect(privateKey?.split(' ')[1]).toMatch(/^[0-9a-f]{64}$/);
    expect(privateKey?.split(' ')[1]).not.toBe(built.masterHostKeySha256);
  });

  it("has none of the master's secrets", () => {
    expect(facts(fw, 'exists').sort()).toEqual(PLANTED.map((p) => `${p} no`).sort());
  });
});

describe('both boots', () => {
  it('got a fresh machine id each', () => {
    expect(fact('bios', 'machine-id')).not.toBe(fact('uefi', 'machine-id'));
  });

  it('served a release whose files hold no master secret', async () => {
    expect((await readFile(path.join(built.release, 'etc/machine-id'), 'utf8')).trim()).toBe('');
    // grep exits 1 when nothing matches, 0 with the matching paths, 2 on an error.
    const grep = spawnSync('grep', ['-rlF', '--devices=skip', SECRET, built.release], {
      encoding: 'utf8',
    });
    expect(grep.stderr).toBe('');
    expect(grep.stdout.trim()).toBe('');
    expect(grep.status).toBe(1);
  });
});

// What the workflow's gate boots: the example template alone, no report unit; the boot
// counts as good at the login prompt. First R2 is promoted and rolled back, as the
// workflow's promote and rollback-to do; then R1's kept ISO is booted.
describe('a rollback to R1, and R1 booted until its login prompt', () => {
  let rollout: {
    promoted: Record<string, string>;
    rolledBack: Record<string, string>;
    currentAfter: string;
    boot: { outputs: Record<string, string>; log: string };
    serial: string;
  };

  beforeAll(async () => {
    const promoted = (await action('promote', { target: built.target, release: built.r2 })).outputs;
    const rolledBack = (await action('promote', { target: built.target, release: 'previous' }))
      .outputs;
    const currentAfter = await readlink(path.join(built.target, 'current'));
    const workDir = path.join(built.work, 'boot-login');
    const boot = await action('boot-test', {
      iso: built.r1Iso.iso ?? '',
      root: path.join(built.target, 'releases', built.r1),
      exports: built.exports,
      firmware: 'bios',
      until: 'login',
      'work-dir': workDir,
    });
    rollout = {
      promoted,
      rolledBack,
      currentAfter,
      boot,
      serial: await readFile(path.join(workDir, 'serial-bios.log'), 'utf8'),
    };
  }, 10 * 60_000);

  it('promotes R2, then promote previous puts R1 back', () => {
    expect(rollout.promoted).toMatchObject({
      release: built.r2,
      previous: built.r1,
      changed: 'true',
    });
    expect(rollout.rolledBack).toMatchObject({
      release: built.r1,
      previous: built.r2,
      changed: 'true',
    });
    expect(rollout.currentAfter).toBe(`releases/${built.r1}`);
  });

  it('kept an ISO per release, each pinned to its own root, one initramfs for both', async () => {
    expect(built.r1Iso.iso).toBe(path.join(built.target, 'releases', `${built.r1}.iso`));
    expect(await readFile(`${built.r1Iso.iso ?? ''}.sha256`, 'utf8')).toBe(
      `${built.r1Iso.sha256 ?? ''}  ${built.r1}.iso\n`,
    );
    expect(built.isoSha256).not.toBe(built.r1Iso.sha256);
    expect(await readFile(path.join(built.release, 'etc/diskless/boot-report'), 'utf8')).toContain(
      'DISKLESS-BOOT-OK',
    );
    const r1Root = path.join(built.target, 'releases', built.r1);
    await expect(readFile(path.join(r1Root, 'etc/diskless/boot-report'))).rejects.toThrow(/ENOENT/);
  });

  it('boots the rolled-back release to its login prompt with BIOS, which names R1', () => {
    expect(rollout.boot.outputs.booted).toBe('bios');
    expect(Number(rollout.boot.outputs['bios-seconds'])).toBeGreaterThan(0);
    expect(rollout.boot.outputs['uefi-seconds']).toBe('');
    expect(rollout.serial).toMatch(/^diskless-e2e login: ?/m);
    expect(rollout.serial).toContain(`diskless release ${built.r1}`);
    expect(rollout.serial).not.toContain('DISKLESS-BOOT-OK');
    process.stderr.write(`bios, login prompt: ${rollout.boot.outputs['bios-seconds'] ?? ''} s\n`);
  });
});

// The emulator as a local cloud: two servers booting the boot test's release from CDs
// uploaded over the API, watched from the inside; a set of the CD and a reset of one.
describe('the local cloud: servers that boot their CD in QEMU', () => {
  const cloud: {
    s?: Started;
    runner?: QemuRunner;
    cds: Record<'a' | 'b', string>;
    servers: string[];
  } = { cds: { a: '', b: '' }, servers: [] };
  const BOOT_LIMIT = 15 * 60_000;

  beforeAll(async () => {
    // Two CDs of the same release that stay up after their report, told apart by a mark.
    for (const cd of ['a', 'b'] as const) {
      const { outputs } = await action('build-iso', {
        ...built.isoInputs,
        cmdline: `panic=10 diskless.stay diskless.cd=${cd}`,
        root: built.release,
        'nfs-root': `${SERVER}:${built.target}/releases/${built.r2}`,
        output: path.join(built.work, 'cloud', `cd-${cd}.iso`),
      });
      cloud.cds[cd] = outputs.iso ?? '';
    }
    const exports = [
      { pseudo: `${built.target}/releases/${built.r2}`, dir: built.release },
      ...built.exports.split('\n').map((l) => {
        const [pseudo = '', dir = ''] = l.split('=');
        return { pseudo, dir };
      }),
    ];
    cloud.runner = await startQemuRunner({
      work: path.join(built.work, 'cloud', 'runner'),
      nfsServer: SERVER,
      exports,
    });
    cloud.s = await startCloud({ runner: cloud.runner });
  }, 10 * 60_000);

  afterAll(async () => {
    await cloud.s?.stop(); // stops every machine and the NFS server
  });

  function emulator(): Emulator {
    if (!cloud.s) throw new Error('the cloud did not start');
    return cloud.s.emulator;
  }

  it(
    'boots two servers created through the API, each reporting from inside at its own address, reached there from this machine',
    async () => {
      const e = emulator();
      const a = await uploadCd(e, 'cd-a', cloud.cds.a);
      const b = await uploadCd(e, 'cd-b', cloud.cds.b);
      cloud.cds = { a, b };
      // Both at once: the two boots share the machine's cores.
      const created = await Promise.all(
        ['web1', 'web2'].map((name) =>
          call(e, 'servers/create', {
            body: `name ${name}\ncpu 2000\nmem 1024\npersistent true\nide:0:1 ${a}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:model virtio\nnic:0:dhcp auto`,
          }),
        ),
      );
      cloud.servers = created.map((r) => properties(r.text).server ?? '');
      const runner = cloud.runner as QemuRunner;
      const seconds = await Promise.all(
        cloud.servers.map((s) => untilBoots(runner.consoleOf(s), 1, BOOT_LIMIT)),
      );
      process.stderr.write(`cloud: two servers reported in ${seconds.join(' s and ')} s\n`);
      const addresses = new Set<string>();
      for (const s of cloud.servers) {
        const server = await info(e, 'servers', s);
        expect(server.status).toBe('active');
        const [report] = await bootReports(runner.consoleOf(s));
        expect(report?.get('hostname')).toBe('diskless-e2e');
        expect(report?.get('cmdline')).toMatch(/ diskless\.cd=a( |$)/);
        expect(report?.get('system')).toBe('running');
        // The address the guest really has is the one the API shows.
        const ipv4 = (report?.get('address') ?? '')
          .split(' ')
          .filter((a) => /^\d+(\.\d+){3}$/.test(a));
        expect(ipv4).toEqual([server['nic:0:dhcp:ip']]);
        addresses.add(server['nic:0:dhcp:ip'] ?? '');
        // This process (the master) reaches it there: its TCP health check names its boot.
        expect(await greeting(server['nic:0:dhcp:ip'] ?? '', runner.consoleOf(s))).toBe(
          `DISKLESS-HEALTH ${report?.get('machine-id') ?? ''}\n`,
        );
      }
      expect(addresses.size).toBe(2);
      expect([...addresses].every((a) => a.startsWith(`${runner.network}.`))).toBe(true);
      expect((await info(e, 'drives', a)).claimed?.split(' ').sort()).toEqual(
        cloud.servers.map((s) => `${alice.user}:guest:${s}:ide:0:1`).sort(),
      );
    },
    BOOT_LIMIT + 120_000,
  );

  it(
    'after a set of the CD and a reset, one server boots the new CD; the other runs on until its shutdown',
    async () => {
      const e = emulator();
      const runner = cloud.runner as QemuRunner;
      const [web1 = '', web2 = ''] = cloud.servers;
      expect(web1).not.toBe('');
      const web2Started = (await info(e, 'servers', web2)).started;
      const set = await call(e, `servers/${web1}/set`, { body: `ide:0:1 ${cloud.cds.b}` });
      expect(set.status).toBe(200);
      // Pending until the reset: web1 still runs off CD a.
      expect((await info(e, 'drives', cloud.cds.b)).claimed).toBeUndefined();
      expect((await call(e, `servers/${web1}/reset`, { method: 'POST' })).status).toBe(204);
      expect((await info(e, 'drives', cloud.cds.b)).claimed).toBe(
        `${alice.user}:guest:${web1}:ide:0:1`,
      );
      const seconds = await untilBoots(runner.consoleOf(web1), 2, BOOT_LIMIT);
      process.stderr.write(`cloud: web1 rebooted onto CD b in ${String(seconds)} s\n`);
      const [first, second] = await bootReports(runner.consoleOf(web1));
      expect(first?.get('cmdline')).toMatch(/ diskless\.cd=a( |$)/);
      expect(second?.get('cmdline')).toMatch(/ diskless\.cd=b( |$)/);
      expect(second?.get('machine-id')).not.toBe(first?.get('machine-id'));
      // Reset keeps the address: the health check reaches the new boot there.
      const web1Ip = (await info(e, 'servers', web1))['nic:0:dhcp:ip'] ?? '';
      expect(await greeting(web1Ip, runner.consoleOf(web1))).toBe(
        `DISKLESS-HEALTH ${second?.get('machine-id') ?? ''}\n`,
      );
      // web2 was not touched: one boot, same start, still running and answering.
      expect(await bootReports(runner.consoleOf(web2))).toHaveLength(1);
      const web2Ip = (await info(e, 'servers', web2))['nic:0:dhcp:ip'] ?? '';
      expect(await greeting(web2Ip, runner.consoleOf(web2))).toMatch(
        /^DISKLESS-HEALTH [0-9a-f]{32}\n$/,
      );
      expect(await info(e, 'servers', web2)).toMatchObject({
        status: 'active',
        started: web2Started,
      });
      // shutdown presses web2's power button: its OS powers the machine off.
      expect((await call(e, `servers/${web2}/shutdown`, { method: 'POST' })).status).toBe(204);
      await untilStatus(e, web2, 'stopped', 5 * 60_000);
      const console2 = await readFile(runner.consoleOf(web2), 'utf8');
      expect(console2).toContain('DISKLESS-POWER-BUTTON pressed: powering off');
      expect(console2).toMatch(/reboot: Power down\s*$/);
      expect((await info(e, 'drives', cloud.cds.a)).claimed).toBeUndefined();
      await expect(tcpGreeting(web2Ip, 22, 2000)).rejects.toThrow();
      expect((await call(e, `servers/${web1}/stop`, { method: 'POST' })).status).toBe(204);
      expect((await info(e, 'servers', web1)).status).toBe('stopped');
    },
    BOOT_LIMIT + 120_000,
  );
});

/** A release's root under the e2e target. */
function releaseDir(id: string): string {
  return path.join(built.target, 'releases', id);
}

/**
 * A rollout's second release: R2's template with `mark` in /etc/diskless-e2e-mark, staged
 * like R2; an ISO of R2 and one of it, each booting its own release; and a QEMU runner
 * whose NFS server serves both (and what the master exports), its work under `dir`.
 */
async function markedRelease(
  dir: string,
  mark: string,
): Promise<{ release: string; isos: [string, string]; runner: QemuRunner }> {
  const template = path.join(built.work, `template-${mark.toLowerCase()}`);
  await cp(built.template, template, { recursive: true });
  await writeFile(path.join(template, 'etc/diskless-e2e-mark'), `${mark}\n`);
  const made = await action('build-rootfs', { ...built.rootfsInputs, template, publish: 'false' });
  const release = made.outputs.release ?? '';
  const isos: string[] = [];
  for (const id of [built.r2, release]) {
    const { outputs } = await action('build-iso', {
      ...built.isoInputs,
      cmdline: 'panic=10 diskless.stay',
      root: releaseDir(id),
      'nfs-root': `${SERVER}:${releaseDir(id)}`,
      output: path.join(built.work, dir, `${id}.iso`),
    });
    isos.push(outputs.iso ?? '');
  }
  const runner = await startQemuRunner({
    work: path.join(built.work, dir, 'runner'),
    nfsServer: SERVER,
    exports: [
      ...[built.r2, release].map((id) => ({ pseudo: releaseDir(id), dir: releaseDir(id) })),
      ...built.exports.split('\n').map((l) => {
        const [pseudo = '', dir = ''] = l.split('=');
        return { pseudo, dir };
      }),
    ],
  });
  return { release, isos: [isos[0] ?? '', isos[1] ?? ''], runner };
}

/**
 * The release each boot on a machine's console reported, in order, once it shows `boots`
 * reports: a rollout's health gate opens when the health socket answers, and the boot
 * report comes later (after multi-user.target), so the last restarted machine's may lag.
 */
async function releasesBooted(
  runner: QemuRunner,
  machine: string,
  boots: number,
): Promise<string[]> {
  await untilBoots(runner.consoleOf(machine), boots, REPORT_LAG);
  return (await bootReports(runner.consoleOf(machine))).map((r) => r.get('release') ?? '');
}

// The rollout (issue 13) on the local cloud: two servers boot R2 from a standby drive D1;
// a template change makes R3, uploaded as standby drive D2 (a server-side copy of D1 plus
// the changed chunks); the rollout action moves the servers one at a time behind a TCP
// health check from this machine; each reports R3 from inside. D1 and R2 stay, and a
// rollout back to D1 (the rollback) puts both servers on R2 again.
describe('a rolling rollout across the local cloud, and its rollback', () => {
  const fleet: {
    s?: Started;
    runner?: QemuRunner;
    r3: string;
    isos: Record<'r2' | 'r3', string>;
    d1: string;
    servers: string[];
  } = { r3: '', isos: { r2: '', r3: '' }, d1: '', servers: [] };
  const BOOT_LIMIT = 15 * 60_000;
  const api = () => {
    if (!fleet.s) throw new Error('the cloud did not start');
    return { 'api-url': fleet.s.emulator.url, 'api-user': alice.user, 'api-key': alice.key };
  };

  beforeAll(async () => {
    const r3 = await markedRelease('fleet', 'R3');
    fleet.r3 = r3.release;
    fleet.isos = { r2: r3.isos[0], r3: r3.isos[1] };
    fleet.runner = r3.runner;
    fleet.s = await startCloud({ runner: fleet.runner });
  }, 10 * 60_000);

  afterAll(async () => {
    await fleet.s?.stop();
  });

  const booted = (server: string, boots: number) =>
    releasesBooted(fleet.runner as QemuRunner, server, boots);

  it(
    'boots two servers from the standby drive D1 that upload-drive wrote for R2',
    async () => {
      if (!fleet.s) throw new Error('the cloud did not start');
      const e = fleet.s.emulator;
      const up = await action('upload-drive', {
        ...api(),
        image: fleet.isos.r2,
        'drive-name': 'fleet-cd',
        release: built.r2,
      });
      fleet.d1 = up.outputs['drive-uuid'] ?? '';
      expect(up.outputs.mode).toBe('standby');
      expect(up.outputs['drive-name']).toMatch(/^fleet-cd-[0-9a-f]{8}$/);
      const created = await Promise.all(
        ['web-a', 'web-b'].map((name) =>
          call(e, 'servers/create', {
            body: `name ${name}\ncpu 2000\nmem 1024\npersistent true\nide:0:1 ${fleet.d1}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:model virtio\nnic:0:dhcp auto`,
          }),
        ),
      );
      fleet.servers = created.map((r) => properties(r.text).server ?? '');
      const runner = fleet.runner as QemuRunner;
      await Promise.all(fleet.servers.map((s) => untilBoots(runner.consoleOf(s), 1, BOOT_LIMIT)));
      for (const s of fleet.servers) expect(await booted(s, 1)).toEqual([built.r2]);
    },
    BOOT_LIMIT + 120_000,
  );

  it(
    'uploads R3 as D2 by a copy of D1, and moves the servers one at a time, each healthy on R3 before the next',
    async () => {
      if (!fleet.s) throw new Error('the cloud did not start');
      const e = fleet.s.emulator;
      const up = await action('upload-drive', {
        ...api(),
        image: fleet.isos.r3,
        'drive-name': 'fleet-cd',
        release: fleet.r3,
      });
      const d2 = up.outputs['drive-uuid'] ?? '';
      expect(d2).not.toBe(fleet.d1);
      expect(up.outputs['previous-drive']).toBe(fleet.d1);
      expect(up.outputs['copied-from']).toBe(fleet.d1);
      // Only what differs between the two ISOs went over the wire.
      expect(Number(up.outputs['chunks-sent'])).toBeLessThan(Number(up.outputs['chunks-total']));
      const started = Date.now();
      const rollout = await action('rollout', {
        ...api(),
        drive: d2,
        restart: 'rolling',
        'batch-size': '1',
        'health-check': 'tcp:22',
        'health-timeout': '900',
      });
      process.stderr.write(
        `fleet: rolling rollout of two servers in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
      expect(rollout.outputs['failed-server']).toBe('');
      expect(rollout.outputs['previous-drive']).toBe(fleet.d1);
      expect(rollout.outputs['servers-restarted']?.split(/[\s,]+/).sort()).toEqual([
        'web-a',
        'web-b',
      ]);
      for (const s of fleet.servers) expect(await booted(s, 2)).toEqual([built.r2, fleet.r3]);
      // One at a time: the second server was reset only after the first came back healthy.
      const [a, b] = await Promise.all(fleet.servers.map((s) => info(e, 'servers', s)));
      const [first, second] = [Number(a?.started), Number(b?.started)].sort((x, y) => x - y);
      expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(10);
      // D1 stays (the rollback drive), and so does R2's root.
      expect((await info(e, 'drives', fleet.d1)).name).toMatch(/^fleet-cd-/);
      expect(spawnSync('test', ['-d', releaseDir(built.r2)]).status).toBe(0);
      // The servers answer at their addresses, from this machine, on R3.
      for (const s of fleet.servers) {
        const ip = (await info(e, 'servers', s))['nic:0:dhcp:ip'] ?? '';
        expect(await greeting(ip, (fleet.runner as QemuRunner).consoleOf(s))).toMatch(
          /^DISKLESS-HEALTH [0-9a-f]{32}\n$/,
        );
      }
    },
    3 * BOOT_LIMIT,
  );

  it(
    'rolls back with a rollout to the previous drive: both servers boot R2 again',
    async () => {
      const rollback = await action('rollout', {
        ...api(),
        drive: fleet.d1,
        restart: 'rolling',
        'health-check': 'tcp:22',
        'health-timeout': '900',
      });
      expect(rollback.outputs['failed-server']).toBe('');
      for (const s of fleet.servers) {
        expect(await booted(s, 3)).toEqual([built.r2, fleet.r3, built.r2]);
      }
    },
    3 * BOOT_LIMIT,
  );
});

// The rollout (issue 16) on the Proxmox VE emulator with the same QEMU runner: two VMs
// boot R2 from the ISO upload-pve put on the storage; R4 (R2's template with a mark) is
// uploaded as a second blue/green file; the rollout action with kind proxmox repoints
// each VM's CD-ROM (with its config's digest) and resets it, one at a time behind a TCP
// health check from this machine; each reports R4 from inside. A rollout back to R2's
// ISO (the rollback) puts both VMs on R2 again.
describe('a rolling rollout across the Proxmox emulator, and its rollback', () => {
  const pve: {
    emulator?: PveEmulator;
    runner?: QemuRunner;
    api?: PveApi;
    r4: string;
    isos: Record<'r2' | 'r4', string>;
    volids: Record<'r2' | 'r4', string>;
  } = { r4: '', isos: { r2: '', r4: '' }, volids: { r2: '', r4: '' } };
  const BOOT_LIMIT = 15 * 60_000;
  const TOKEN = { id: 'ci@pve!e2e', secret: `pve-e2e-${String(process.pid)}` };
  const VMIDS = [201, 202];
  const connection = () => {
    if (!pve.emulator) throw new Error('the Proxmox emulator did not start');
    return {
      'api-url': pve.emulator.url.replace('/api2/json', ''),
      'token-id': TOKEN.id,
      'token-secret': TOKEN.secret,
      node: 'pve',
      'tls-fingerprint': pve.emulator.fingerprint,
    };
  };

  beforeAll(async () => {
    const r4 = await markedRelease('pve', 'R4');
    pve.r4 = r4.release;
    pve.isos = { r2: r4.isos[0], r4: r4.isos[1] };
    pve.runner = r4.runner;
    const net = pve.runner.network;
    pve.emulator = await startPveEmulator({
      dataDir: path.join(built.work, 'pve', 'data'),
      tokens: [TOKEN],
      runner: pve.runner,
      vms: VMIDS.map((vmid, i) => ({
        vmid,
        name: `vm-${String(vmid)}`,
        config: { ide2: 'none,media=cdrom', boot: 'order=ide2', agent: '1', memory: 1024 },
        address: `${net}.${String(31 + i)}`,
      })),
    });
    pve.api = new PveApi({
      url: pve.emulator.url,
      tokenId: TOKEN.id,
      secret: TOKEN.secret,
      tls: { fingerprint: pve.emulator.fingerprint },
    });
  }, 10 * 60_000);

  afterAll(async () => {
    await pve.api?.close();
    await pve.emulator?.close();
  });

  const booted = (vmid: number, boots: number) =>
    releasesBooted(pve.runner as QemuRunner, machineId(vmid), boots);

  it(
    'boots two VMs from the ISO that upload-pve put on the storage for R2',
    async () => {
      const api = pve.api as PveApi;
      const up = await action('upload-pve', {
        ...connection(),
        storage: 'local',
        image: pve.isos.r2,
      });
      pve.volids.r2 = up.outputs.volid ?? '';
      expect(pve.volids.r2).toMatch(/^local:iso\/diskless-[0-9a-f]{8}\.iso$/);
      for (const vmid of VMIDS) {
        const vm = { node: 'pve', vmid };
        await repointCd(api, vm, 'ide2', pve.volids.r2, (await readConfig(api, vm)).digest);
        await restartVm(api, vm, 'start');
      }
      const runner = pve.runner as QemuRunner;
      await Promise.all(
        VMIDS.map((vmid) => untilBoots(runner.consoleOf(machineId(vmid)), 1, BOOT_LIMIT)),
      );
      for (const vmid of VMIDS) expect(await booted(vmid, 1)).toEqual([built.r2]);
    },
    BOOT_LIMIT + 120_000,
  );

  it(
    'uploads R4 as a second ISO and moves the VMs one at a time, each healthy on R4 before the next',
    async () => {
      const api = pve.api as PveApi;
      const up = await action('upload-pve', {
        ...connection(),
        storage: 'local',
        image: pve.isos.r4,
      });
      pve.volids.r4 = up.outputs.volid ?? '';
      expect(pve.volids.r4).not.toBe(pve.volids.r2);
      const started = Date.now();
      const rollout = await action('rollout', {
        ...connection(),
        kind: 'proxmox',
        iso: pve.volids.r4,
        restart: 'rolling',
        'batch-size': '1',
        'health-check': 'tcp:22',
        'health-timeout': '900',
      });
      process.stderr.write(
        `pve: rolling rollout of two VMs in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
      expect(rollout.outputs['failed-server']).toBe('');
      expect(rollout.outputs['previous-drive']).toBe(pve.volids.r2);
      expect(rollout.outputs['servers-restarted']).toBe('vm-201 vm-202');
      for (const vmid of VMIDS) {
        expect(await booted(vmid, 2)).toEqual([built.r2, pve.r4]);
        const { config } = await readConfig(api, { node: 'pve', vmid });
        expect(config.ide2?.split(',')[0]).toBe(pve.volids.r4);
      }
      // The VMs answer at their agents' addresses, from this machine, on R4.
      for (const vmid of VMIDS) {
        const { address } = await vmState(api, { node: 'pve', vmid });
        expect(
          await greeting(address ?? '', (pve.runner as QemuRunner).consoleOf(machineId(vmid))),
        ).toMatch(/^DISKLESS-HEALTH [0-9a-f]{32}\n$/);
      }
    },
    3 * BOOT_LIMIT,
  );

  it(
    "rolls back with a rollout to R2's ISO: both VMs boot R2 again",
    async () => {
      const rollback = await action('rollout', {
        ...connection(),
        kind: 'proxmox',
        iso: pve.volids.r2,
        'health-check': 'tcp:22',
        'health-timeout': '900',
      });
      expect(rollback.outputs['failed-server']).toBe('');
      for (const vmid of VMIDS) {
        expect(await booted(vmid, 3)).toEqual([built.r2, pve.r4, built.r2]);
      }
    },
    3 * BOOT_LIMIT,
  );
});
