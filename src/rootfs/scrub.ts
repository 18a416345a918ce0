/**
 * The master's identity and secrets never reach the client root: the copy excludes them
 * (so they are never written, not even for a moment), and this phase gives the client
 * what it needs instead: an empty machine-id (a read-only client then gets a transient
 * one), /etc/mtab as a link to the kernel's table, and ssh host keys of its own, made
 * once and kept in the state directory so that clients keep their identity across
 * nightly rebuilds.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Reporter } from '../report.js';
import { KEY_STORES } from '../secrets/key-stores.js';
import { run } from '../process/run.js';
import { type ClientTree } from './tree.js';
import { lstatOrUndefined } from '../files.js';

/** rsync exclude patterns for the master's secrets and identity. */
export const SECRET_EXCLUDES: readonly string[] = [
  '/etc/ssh/ssh_host_*',
  '/etc/machine-id',
  '/var/lib/dbus/machine-id',
  '/var/lib/systemd/random-seed',
  '/var/lib/systemd/credential.secret',
  '/etc/credstore/',
  '/etc/credstore.encrypted/',
  '/etc/udev/rules.d/70-persistent-*.rules',
  '/etc/hostname',
  '/etc/exports',
  '/etc/exports.d/',
  '/etc/shadow-',
  '/etc/gshadow-',
  '/etc/passwd-',
  '/etc/group-',
  '/etc/subuid-',
  '/etc/subgid-',
  '/etc/NetworkManager/system-connections/*',
  '/etc/krb5.keytab',
  '/etc/ssl/private/*',
  '/etc/.git',
  // Cloud and API credentials (the 2011 upload key lived in /etc/default/elastichosts).
  '/etc/default/elastichosts',
  '/etc/elastichosts*',
  '.aws/',
  '.s3cfg',
  '.boto',
  '.config/gcloud/',
  '.docker/config.json',
  '.kube/config',
  // The Actions runner's registration and credentials.
  '.credentials',
  '.credentials_rsaparams',
  '.runner',
  // Per-user credentials, wherever they are.
  '.git-credentials',
  '.netrc',
  '.pgpass',
  '.ssh/id_*',
  '*.keytab',
  // Where Debian packages keep private keys and credentials (dropbear, WireGuard, ...).
  ...KEY_STORES,
];

/** Host key types given to clients. */
const KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;

/** The client ssh host keys' paths inside the client root (the scan accepts these). */
export const CLIENT_KEY_PATHS: readonly string[] = KEY_TYPES.flatMap((t) => [
  `etc/ssh/ssh_host_${t}_key`,
  `etc/ssh/ssh_host_${t}_key.pub`,
]);

/** Makes the client keys in `stateDir` once; later builds reuse them. */
export async function clientKeys(stateDir: string, reporter: Reporter): Promise<string> {
  const dir = path.join(stateDir, 'client-ssh-host-keys');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const type of KEY_TYPES) {
    const key = path.join(dir, `ssh_host_${type}_key`);
    if (await lstatOrUndefined(key)) continue;
    reporter.info(`Generating the clients' ${type} ssh host key in ${dir}`);
    await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'diskless-client', '-f', key], {
      debianPackage: 'openssh-client',
    });
  }
  return dir;
}

export interface ScrubResult {
  sshKeys: boolean;
}

/** Writes the client's identity files; removes what the copy could not exclude. */
export async function scrub(
  tree: ClientTree,
  /** keyDir: the clients' keys (clientKeys), made by the build when it wants them. */
  o: { clientSshKeys: boolean; keyDir: string | undefined },
  reporter: Reporter,
): Promise<ScrubResult> {
  // Empty: systemd sees a read-only root with no id and makes a transient one at boot.
  await tree.writeFile('etc/machine-id', '', { mode: 0o444, mtime: new Date(0) });
  await tree.symlink('etc/mtab', '../proc/self/mounts');
  // Excluded by the copy already; removed here too in case an older in-place root has them.
  // (D-Bus's copy lives in /var, which the client gets empty: it falls back to the above.)
  for (const leftover of ['etc/hostname', 'etc/exports']) {
    if (await tree.remove(leftover)) reporter.info(`Removed /${leftover}`);
  }
  let sshKeys = false;
  const sshd = await tree.stat('etc/ssh');
  if (o.keyDir && sshd?.isDirectory()) {
    for (const rel of CLIENT_KEY_PATHS) {
      const from = path.join(o.keyDir, path.basename(rel));
      const st = await stat(from);
      await tree.writeFile(rel, await readFile(from), {
        mode: rel.endsWith('.pub') ? 0o644 : 0o600,
        mtime: st.mtime,
      });
    }
    sshKeys = true;
    reporter.info(`Installed the clients' own ssh host keys from ${o.keyDir}`);
  } else if (!o.clientSshKeys) {
    reporter.info('client-ssh-keys is false: the client root has no ssh host keys');
  }
  return { sshKeys };
}
