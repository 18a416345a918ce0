// Issue 14: a fixture master with a secret in every form (real keys by ssh-keygen, openssl
// and dropbearkey); each one is kept out of the client or fails the build by path and
// rule, all in one run, and nothing printed holds a secret's contents.
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { exists } from '../../src/files.js';
import { buildRootfs } from '../../src/rootfs/build.js';
import { collector, makeMaster, options, tempDir } from './fixture.js';
import { plantSecrets, secretRuns, type PlantedSecrets } from './secret-fixture.js';

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
    const reporter = collector();
    const error = await buildRootfs(inputs(target, await tempDir('state')), reporter).catch(
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
    const report = await buildRootfs(
      inputs(target, await tempDir('state'), {
        'secret-allow': Object.keys(planted.found).join('\n'),
      }),
      collector(),
    );
    const root = String(report.outputs.root);
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
      const r = await buildRootfs(
        inputs(target, await tempDir('state'), { ...allow, ...extra }),
        collector(),
      );
      const read = (rel: string) => readFile(path.join(String(r.outputs.root), rel), 'utf8');
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
      buildRootfs(
        inputs(target, await tempDir('state'), { ...allow, 'keep-password-hashes': 'bob' }),
        collector(),
      ),
    ).rejects.toThrow(/^Input "keep-password-hashes": got "bob"; expected the name of an account/);
  });
});
