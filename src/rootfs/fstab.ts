/**
 * The client's fstab: / is mounted read-only over NFS by the initramfs, so fstab holds
 * tmpfs /var and /tmp and, unless /usr is copied, the read-only NFS /usr that
 * initramfs-tools mounts before switching root (with options klibc's nfsmount knows).
 * It comes from the template (checked here before anything is touched) or is generated.
 */
import { DisklessError } from '../errors.js';

export const FSTAB = 'etc/fstab';

/** The NFS options klibc's nfsmount understands (no `defaults`), NFSv3 over TCP. */
export const NFS_OPTIONS = 'ro,nolock,tcp,vers=3,port=2049';

export interface Mount {
  spec: string;
  file: string;
  type: string;
}

/** The lines of an fstab: spec, mount point (no trailing slash) and type. */
export function fstabMounts(text: string): Mount[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [spec = '', file = '', type = ''] = line.split(/\s+/);
      return { spec, file: file.replace(/\/+$/, '') || '/', type };
    });
}

/** A path as an fstab field: space, tab, newline and backslash in octal (\040). */
export function fstabField(value: string): string {
  return value.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * Throws when a template fstab would leave the client without its writable or /usr
 * mounts, has a line of more than six fields (a path with an unescaped space), or mounts
 * the master's /home over NFS while share-home is false.
 */
export function checkFstab(
  text: string,
  o: { copyUsr: boolean; shareHome: boolean; from: string },
): void {
  for (const line of text.split('\n').map((l) => l.replace(/#.*/, '').trim())) {
    if (line.split(/\s+/).length > 6) {
      throw new DisklessError(
        `template ${o.from}: the line ${JSON.stringify(line)} has more than 6 fields; expected spaces in paths written as \\040`,
      );
    }
  }
  const all = fstabMounts(text);
  const home = all.find((x) => x.file === '/home');
  if (home && /^nfs4?$/.test(home.type) && !o.shareHome) {
    throw new DisklessError(
      `template ${o.from}: /home is mounted from ${home.spec} over NFS; expected a /home of the clients' own (tmpfs) unless input "share-home" is true (then the build scans the master's /home)`,
    );
  }
  for (const dir of ['/var', '/tmp']) {
    const m = all.find((x) => x.file === dir);
    if (m?.type !== 'tmpfs') {
      throw new DisklessError(
        `template ${o.from}: ${m ? `${dir} is mounted as ${m.type}` : `no line mounts ${dir}`}; expected "tmpfs ${dir} tmpfs ..." (the client root's ${dir} is empty and read-only)`,
      );
    }
  }
  if (!o.copyUsr && !all.some((x) => x.file === '/usr')) {
    throw new DisklessError(
      `template ${o.from}: no line mounts /usr; expected one since copy-usr is false, e.g. "10.0.0.1:/usr /usr nfs ${NFS_OPTIONS} 0 0"`,
    );
  }
}

/** An fstab for a template that has none. */
export function generateFstab(o: {
  copyUsr: boolean;
  shareHome: boolean;
  nfsServer: string | undefined;
  usrExport: string;
  homeExport: string;
}): string {
  const lines = [
    '# Written by diskless-node build-rootfs. / is mounted read-only over NFS by the initramfs.',
    'tmpfs /var tmpfs mode=0755,size=25% 0 0',
    'tmpfs /tmp tmpfs mode=1777,size=25% 0 0',
  ];
  if (o.shareHome && o.nfsServer) {
    lines.push(`${o.nfsServer}:${fstabField(o.homeExport)} /home nfs ${NFS_OPTIONS} 0 0`);
  } else {
    lines.push('tmpfs /home tmpfs mode=0755,size=64m 0 0');
  }
  if (!o.copyUsr) {
    if (!o.nfsServer) {
      throw new DisklessError(
        'Input "nfs-server" is required when the template has no etc/fstab and copy-usr is false: expected the address clients mount /usr from',
      );
    }
    lines.push(`${o.nfsServer}:${fstabField(o.usrExport)} /usr nfs ${NFS_OPTIONS} 0 0`);
  }
  return `${lines.join('\n')}\n`;
}
