// Issue 14: a fixture master with a secret in every form (real keys by ssh-keygen, openssl
// and dropbearkey); each one is kept out of the client or fails the build by path and
// rule, all in one run, and nothing printed holds a secret's contents.
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { exists } from '../../src/files.js';
import { buildReport, makeMaster, options, tempDir } from './fixture.js';
import { plantSecrets, secretRuns, type PlantedSecrets } from './secret-fixture.js';
import { recordingReporter } from '../../src/report.js';

let master: string;
let planted: PlantedSecrets;

function inputs(target: string, state: string, extra: Record<string, string> = {}) {
  return options({
    source: master,
    target,
    'state-dir': state,
    'nfs-server': '10.0.0.1',
    ...extra,
  });
}

beforeAll(async () => {
  master = await makeMaster();
  planted = await plantSecrets(master);
  // A key under the master's /usr, which clients mount live.
  const usrKey = path.join(master, 'usr/local/etc/app/client.key');
  await mkdir(path.dirname(usrKey), { recursive: true });
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', usrKey]);
  planted.found['/usr/local/etc/app/client.key'] = 'pem-private-key';
  planted.contents.push(await readFile(usrKey, 'latin1'));
}, 120_000);

describe('a master with secrets in every form', () => {
  it('fails the build naming every hit by path and rule at once, quoting none', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const reporter = recordingReporter();
    const error = await buildReport(inputs(target, await tempDir('state')), reporter).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DisklessError);
    const message = (error as Error).message;
    for (const [file, rule] of Object.entries(planted.found)) {
      expect(message, file).toContain(`${file} (${rule})`);
    }
    // The key stores were never copied, so only the content hits are named.
    for (const rel of planted.stores) expect(message, rel).not.toContain(rel);
    const printed = [message, ...reporter.lines, ...reporter.warnings].join('\n');
    for (const run of secretRuns(planted.contents)) expect(printed).not.toContain(run);
    // Nothing published.
    expect(await exists(path.join(target, 'current'))).toBe(false);
  });

  it('publishes once the content hits are allowed, with no key store copied', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const report = await buildReport(
      inputs(target, await tempDir('state'), {
        'secret-allow': Object.keys(planted.found).join('\n'),
      }),
      recordingReporter(),
    );
    const root = report.outputs.root;
    for (const rel of planted.stores) expect(await exists(path.join(root, rel)), rel).toBe(false);
    expect(await exists(path.join(root, 'etc/wireguard'))).toBe(false);
    expect(await readdir(path.join(root, 'etc/letsencrypt'))).toEqual([]);
  });
});

describe('accounts', () => {
  it("locks the client's password hashes and leaves non-system users out, unless named", async () => {
    const hash = '$6$salt$' + 'h'.repeat(86);
    await writeFile(
      path.join(master, 'etc/shadow'),
      `root:${hash}:19000:0:99999:7:::\nvarnish:!:19000::::::\nalice:${hash}:19000:0:99999:7:::\n`,
    );
    await writeFile(path.join(master, 'etc/gshadow'), 'root:*::\nsudo:*::alice\nalice:!::\n');
    await writeFile(
      path.join(master, 'etc/group'),
      'root:x:0:\nsudo:x:27:alice\nvarnish:x:118:\nalice:x:1000:\n',
    );
    const allow = { 'secret-allow': Object.keys(planted.found).join('\n') };
    const build = async (extra: Record<string, string>) => {
      const target = path.join(await tempDir('target'), 'clients');
      const r = await buildReport(
        inputs(target, await tempDir('state'), { ...allow, ...extra }),
        recordingReporter(),
      );
      const read = (rel: string) => readFile(path.join(r.outputs.root, rel), 'utf8');
      return {
        passwd: await read('etc/passwd'),
        shadow: await read('etc/shadow'),
        group: await read('etc/group'),
        gshadow: await read('etc/gshadow'),
      };
    };
    const locked = await build({});
    expect(locked.shadow).toBe('root:!:19000:0:99999:7:::\nvarnish:!:19000::::::\n');
    expect(locked.shadow).not.toContain('$6$');
    expect(locked.passwd).not.toContain('alice');
    expect(locked.group).toBe('root:x:0:\nsudo:x:27:\nvarnish:x:118:\n');
    expect(locked.gshadow).toBe('root:*::\nsudo:*::\n');

    const kept = await build({ 'client-users': 'alice', 'keep-password-hashes': 'alice' });
    expect(kept.passwd).toContain('alice:x:1000:1000::/home/alice:/bin/bash\n');
    expect(kept.shadow).toContain(`alice:${hash}:`);
    expect(kept.shadow).toContain('root:!:');
    expect(kept.group).toContain('sudo:x:27:alice\n');

    const target = path.join(await tempDir('target'), 'clients');
    await expect(
      buildReport(
        inputs(target, await tempDir('state'), { ...allow, 'keep-password-hashes': 'bob' }),
        recordingReporter(),
      ),
    ).rejects.toThrow(/^Input "keep-password-hashes": got "bob"; expected the name of an account/);
  });
});

describe('what clients mount from the master', () => {
  it("scans a shared /home and fails on its users' keys; reads only what changed in /usr on a rebuild", async () => {
    const home = await makeMaster();
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-f',
      path.join(home, 'home/alice/id_backup'),
    ]);
    const state = await tempDir('state');
    const target = path.join(await tempDir('target'), 'clients');
    const run = (extra: Record<string, string>, reporter = recordingReporter()) =>
      buildReport(
        options({ source: home, target, 'state-dir': state, 'nfs-server': '10.0.0.1', ...extra }),
        reporter,
      );
    const shared = recordingReporter();
    const error = await run({ 'share-home': 'true' }, shared).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DisklessError);
    expect((error as Error).message).toContain('/home/alice/.netrc (credential-file)');
    expect((error as Error).message).toContain('/home/alice/id_backup (pem-private-key)');
    expect(shared.lines.join('\n')).toMatch(
      /\/usr \(copy-usr is false\): read [1-9]\d* of \d+ file\(s\).*first scan/,
    );

    // Not shared: /home is not scanned and the clients get their own; /usr was scanned
    // clean above, so nothing in it is read again until something changes.
    const again = recordingReporter();
    const report = await run({}, again);
    expect(await readFile(path.join(report.outputs.root, 'etc/fstab'), 'utf8')).toMatch(
      /^tmpfs \/home tmpfs /m,
    );
    expect(again.lines.join('\n')).not.toContain('/home (share-home');
    expect(again.lines.join('\n')).toMatch(
      /\/usr \(copy-usr is false\): read 0 of [1-9]\d* file\(s\)/,
    );
    await writeFile(path.join(home, 'usr/bin/varnishd'), '#!/bin/sh\n# upgraded\n');
    const third = recordingReporter();
    await run({}, third);
    expect(third.lines.join('\n')).toMatch(/\/usr \(copy-usr is false\): read 1 of /);
    // Two finds list /usr, one of /usr/lib and one of the rest: a change in either is seen.
    await writeFile(path.join(home, 'usr/lib/systemd/system/new.service'), '[Unit]\n');
    const fourth = recordingReporter();
    await run({}, fourth);
    expect(fourth.lines.join('\n')).toMatch(/\/usr \(copy-usr is false\): read 1 of /);
    const fifth = recordingReporter();
    await run({}, fifth);
    expect(fifth.lines.join('\n')).toMatch(/\/usr \(copy-usr is false\): read 0 of /);
    // A key written over a clean file of the same size, its modification time put back,
    // is still read: the write moved its ctime, which nothing can set back.
    const key = execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519'], { encoding: 'utf8' });
    const notes = path.join(home, 'usr/bin/notes.txt');
    await writeFile(notes, 'x'.repeat(key.length));
    await run({});
    const stamp = path.join(state, 'notes-mtime');
    execFileSync('touch', ['-r', notes, stamp]); // to the nanosecond
    await writeFile(notes, key);
    execFileSync('touch', ['-r', stamp, notes]);
    expect((await stat(notes)).mtimeMs).toBe((await stat(stamp)).mtimeMs);
    expect((await stat(notes)).size).toBe(key.length);
    const planted = await run({}).catch((e: unknown) => e);
    expect((planted as Error).message).toContain('/usr/bin/notes.txt (pem-private-key)');
  });
});

describe('host-keys-at-boot', () => {
  it('puts no private host key in the root; the unit makes the keys sshd is told to use', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const report = await buildReport(
      inputs(target, await tempDir('state'), {
        'secret-allow': Object.keys(planted.found).join('\n'),
        'host-keys-at-boot': 'true',
      }),
      recordingReporter(),
    );
    const root = report.outputs.root;
    expect(
      (await readdir(path.join(root, 'etc/ssh'))).filter((n) => n.startsWith('ssh_host_')),
    ).toEqual([]);
    const unitFile = 'etc/systemd/system/diskless-ssh-host-keys.service';
    expect(
      await exists(
        path.join(
          root,
          'etc/systemd/system/multi-user.target.wants/diskless-ssh-host-keys.service',
        ),
      ),
    ).toBe(true);
    // Run the unit's commands into a scratch /run: every HostKey sshd is given exists.
    const run = await tempDir('run');
    const unit = await readFile(path.join(root, unitFile), 'utf8');
    for (const line of unit.split('\n').filter((l) => l.startsWith('ExecStart='))) {
      const [cmd = '', ...args] = line
        .slice('ExecStart='.length)
        .replaceAll('/run', run)
        .split(' ');
      execFileSync(cmd, args);
    }
    const dropIn = await readFile(
      path.join(root, 'etc/ssh/sshd_config.d/diskless-host-keys.conf'),
      'utf8',
    );
    const keys = [...dropIn.matchAll(/^HostKey (\S+)$/gm)].map((m) =>
      (m[1] ?? '').replace('/run', run),
    );
    expect(keys).toHaveLength(3);
    for (const key of keys) expect(await readFile(key, 'utf8'), key).toMatch(/PRIVATE KEY/);
  });
});
