/**
 * The initramfs is built with the master's packages, so mkinitramfs runs the master's
 * hooks: dropbear-initramfs copies the master's dropbear host keys (remote LUKS unlock)
 * and cryptsetup-initramfs the keyfiles its KEYFILE_PATTERN names. Neither hook reads the
 * client's config, so the config copy gets a hook of its own, run after them, that takes
 * these master-only features out again: a diskless client has no disk to unlock, and the
 * image sits on a cloud drive every client reads and in a workflow artifact.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const CLIENT_ONLY_HOOK = 'hooks/zz-diskless-client-only';

/** What the hook removes from the image, relative to its root. */
export const MASTER_ONLY = [
  // dropbear-initramfs: the server, its host keys and config, root's home, its scripts
  'etc/dropbear',
  'sbin/dropbear',
  'usr/sbin/dropbear',
  'root-*',
  'scripts/init-premount/dropbear',
  'scripts/init-bottom/dropbear',
  // cryptsetup-initramfs: its crypttab and keyfiles, and the scripts that unlock
  'cryptroot',
  'conf/conf.d/cryptroot',
  'scripts/local-top/cryptroot',
  'scripts/local-block/cryptroot',
  'scripts/local-bottom/cryptroot',
  'scripts/local-bottom/cryptgnupg-sc',
  'scripts/local-top/cryptopensc',
  'scripts/local-bottom/cryptopensc',
] as const;

/**
 * What a lean image (MODULES=list: the drivers of virtual machines, named) leaves out
 * besides: udev's hardware database, which trixie's udev hook copies in (13 MiB, 2.2 MiB
 * of the compressed image). It names vendors, keyboards and sensors; nothing of an NFS
 * boot reads it, and udev goes on without it.
 */
export const NOT_IN_LEAN = ['usr/lib/udev/hwdb.bin'] as const;

const HOOK = `#!/bin/sh
# Written by diskless build-iso: the master's dropbear (host keys) and cryptsetup
# (keyfiles) features are not the diskless client's; take them out of its initramfs.
# A lean image (MODULES=list) also goes without udev's hardware database.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
cd "$DESTDIR" || exit 1
rm -rf -- ${MASTER_ONLY.join(' ')}
if [ "$MODULES" = list ]; then rm -f -- ${NOT_IN_LEAN.join(' ')}; fi
exit 0
`;

/** Adds the hook to the client's config copy in `configDir`. */
export async function disableMasterOnlyFeatures(configDir: string): Promise<void> {
  const file = path.join(configDir, CLIENT_ONLY_HOOK);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, HOOK, { mode: 0o755 });
  await chmod(file, 0o755);
}
