/**
 * The boot test (npm run test:e2e, run by .ci/run; not part of npm test): the workflow's
 * pipeline on a copy of the sample master root with planted secrets and a server-only
 * daemon, then the ISO booted in QEMU with BIOS (SeaBIOS) and UEFI (OVMF) against the
 * release served over NFS. The client's report unit (test/e2e/template) prints what it
 * sees on the serial console; the assertions are about the booted client.
 * Needs root and the Debian packages of .ci/run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../../src/files.js';
import { runAction } from '../../src/harness/run-action.js';
import { list } from '../../src/inputs/fields.js';
import { reportLines } from '../../src/boot/serial.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Firmware } from '../../src/boot/qemu.js';
import { overlay, sampleRoot, tempDir } from '../iso/fixture.js';

const repo = path.resolve(import.meta.dirname, '../..');
const SERVER = '10.0.2.100';
const SERVER_UNIT = 'diskless-e2e-server.service';
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
  release: string;
  iso: string;
  isoSha256: string;
  rootfsInputs: Record<string, string>;
  isoInputs: Record<string, string>;
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

  const rootfsInputs = {
    source: copy,
    target,
    template,
    'state-dir': path.join(work, 'state'),
    'nfs-server': SERVER,
    'client-hostname': 'diskless-e2e',
    'var-dirs': varDirs.join('\n'),
    'template-values': (await settingLines('template-values')).join('\n'),
    'mask-services': SERVER_UNIT,
    'enable-services': 'diskless-boot-report.service',
  };
  const rootfs = await action('build-rootfs', rootfsInputs);
  const release = rootfs.outputs.root ?? '';
  const isoInputs = {
    sysroot: copy,
    'nfs-root': `${SERVER}:${target}/current`,
    cmdline: 'panic=10',
    'cache-dir': '/var/cache/diskless/initramfs',
    cache: 'local',
  };
  const { outputs: iso } = await action('build-iso', {
    ...isoInputs,
    root: release,
    output: path.join(work, 'diskless-boot.iso'),
  });
  // /usr of the master copy comes from the sample root itself (the copy did not change
  // it; nfs-ganesha cannot serve an overlayfs). /home is the clients' own tmpfs.
  const exports = [`${path.join(copy, 'usr')}=${path.join(master, 'usr')}`].join('\n');
  built = {
    master,
    copy,
    target,
    release,
    iso: iso.iso ?? '',
    isoSha256: iso.sha256 ?? '',
    rootfsInputs,
    isoInputs,
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

  it('mounts / read-only over NFS from the release path', () => {
    const root = mount(fw, '/');
    expect(root.type).toBe('nfs');
    expect(root.spec).toBe(`${SERVER}:${built.target}/current`);
    expect(root.options).toContain('ro');
    expect(root.options).toContain('vers=3');
    expect(facts(fw, 'write')).toContain('/ read-only');
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
// counts as good at the login prompt.
describe('the example template alone, booted until its login prompt', () => {
  let plain: {
    release: string;
    iso: Record<string, string>;
    boot: { outputs: Record<string, string>; log: string };
    serial: string;
  };

  beforeAll(async () => {
    const rootfs = await action('build-rootfs', {
      ...built.rootfsInputs,
      template: path.join(repo, 'template'),
      'enable-services': '',
    });
    const release = rootfs.outputs.root ?? '';
    const { outputs: iso } = await action('build-iso', {
      ...built.isoInputs,
      root: release,
      output: path.join(built.work, 'plain', 'diskless-boot.iso'),
    });
    const workDir = path.join(built.work, 'boot-login');
    const boot = await action('boot-test', {
      iso: iso.iso ?? '',
      root: release,
      exports: built.exports,
      firmware: 'bios',
      until: 'login',
      'work-dir': workDir,
    });
    plain = {
      release,
      iso,
      boot,
      serial: await readFile(path.join(workDir, 'serial-bios.log'), 'utf8'),
    };
  }, 10 * 60_000);

  it('is a new release beside the first, served with the same ISO', async () => {
    expect(plain.release).not.toBe(built.release);
    expect(await readFile(path.join(built.release, 'etc/diskless/boot-report'), 'utf8')).toContain(
      'DISKLESS-BOOT-OK',
    );
    await expect(readFile(path.join(plain.release, 'etc/diskless/boot-report'))).rejects.toThrow(
      /ENOENT/,
    );
    // The ISO holds the kernel and the client's initramfs config, not the release.
    expect(plain.iso['initramfs-cache-hit']).toBe('true');
    expect(plain.iso.sha256).toBe(built.isoSha256);
  });

  it('reaches the login prompt on the serial console with BIOS', () => {
    expect(plain.boot.outputs.booted).toBe('bios');
    expect(Number(plain.boot.outputs['bios-seconds'])).toBeGreaterThan(0);
    expect(plain.boot.outputs['uefi-seconds']).toBe('');
    expect(plain.serial).toMatch(/^diskless-e2e login: ?/m);
    expect(plain.serial).not.toContain('DISKLESS-BOOT-OK');
    process.stderr.write(`bios, login prompt: ${plain.boot.outputs['bios-seconds'] ?? ''} s\n`);
  });
});
