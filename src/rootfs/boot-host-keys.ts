/**
 * host-keys-at-boot: each client makes its ssh host keys at boot, in tmpfs (/run), so the
 * exported root holds no private host key that any client's root could read over NFS.
 * The trade-off: a client's key changes at every boot, so ssh clients see a new host key
 * (use an ssh CA or known_hosts by name with care); the default keeps one stable pair,
 * made once in state-dir, shared by every client.
 */
import type { ClientTree } from './tree.js';

export const BOOT_KEYS_UNIT = 'diskless-ssh-host-keys.service';
const KEY_DIR = '/run/ssh-host-keys';

const UNIT_TEXT = `# Written by diskless-node build-rootfs (host-keys-at-boot): this boot's ssh host keys, in tmpfs.
[Unit]
Description=ssh host keys of this boot in ${KEY_DIR}
DefaultDependencies=no
After=local-fs.target
Before=ssh.service sshd.service
ConditionPathExists=/usr/bin/ssh-keygen

[Service]
Type=oneshot
RemainAfterExit=yes
UMask=0077
ExecStart=/bin/mkdir -p -m 0700 ${KEY_DIR}/etc/ssh
ExecStart=/usr/bin/ssh-keygen -A -f ${KEY_DIR}

[Install]
WantedBy=multi-user.target
`;

const SSHD_DROP_IN = `# Written by diskless-node build-rootfs (host-keys-at-boot): keys made at boot by ${BOOT_KEYS_UNIT}.
${['ed25519', 'ecdsa', 'rsa'].map((t) => `HostKey ${KEY_DIR}/etc/ssh/ssh_host_${t}_key`).join('\n')}
`;

/** Installs the unit and sshd's drop-in; the caller enables the unit. */
export async function installBootHostKeys(tree: ClientTree): Promise<void> {
  const attrs = { mode: 0o644, mtime: new Date(0) };
  await tree.writeFile(`etc/systemd/system/${BOOT_KEYS_UNIT}`, UNIT_TEXT, attrs);
  await tree.writeFile('etc/ssh/sshd_config.d/diskless-host-keys.conf', SSHD_DROP_IN, attrs);
}
