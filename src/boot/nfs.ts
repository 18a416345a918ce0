/**
 * A userspace NFS server for boot tests (e2e-boot.md): nfs-ganesha with rpcbind on the
 * loopback of the test's private namespace, serving NFSv3 over TCP only, read-only,
 * without a grace period.
 * Each export has the path the clients mount (the pseudo path: with
 * Mount_Path_Pseudo the MOUNT protocol uses it too) and the local directory served there,
 * so a release can be served at the path the ISO's nfsroot= names.
 *
 * ganesha keeps old directory entries of a tree rebuilt under it: it is started for each
 * test, after the release was built, and stopped afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lastLines } from '../process/run.js';
import type { Reporter } from '../report.js';
import { listeningPorts, type Namespace } from './namespace.js';
import type { Processes, Started } from './processes.js';

const NFS_PORT = 2049;
const MOUNT_PORT = 20048;
const PORTMAP_PORT = 111;
/** The TCP ports a client needs: the portmapper (klibc's nfsmount asks it), NFS, MOUNT. */
export const NFS_CLIENT_PORTS = [PORTMAP_PORT, NFS_PORT, MOUNT_PORT] as const;

export interface NfsExport {
  /** The path clients mount, e.g. /srv/diskless/current. */
  pseudo: string;
  /** The local directory served there. */
  dir: string;
}

function quote(value: string): string {
  if (/["\\\n]/.test(value)) {
    throw new DisklessError(`NFS export path ${JSON.stringify(value)}: expected no quotes`);
  }
  return `"${value}"`;
}

/**
 * ganesha.conf for these exports: NFSv3 over TCP, read-only, no root squash. It listens on
 * every address of the private namespace, which has only its loopback (no Bind_addr: with
 * no other interface up, glibc does not resolve even "127.0.0.1", AI_ADDRCONFIG).
 */
export function ganeshaConfig(exports: readonly NfsExport[], o: { stateDir: string }): string {
  const blocks = exports.map((e, i) =>
    [
      'EXPORT {',
      `  Export_Id = ${i + 1};`,
      `  Path = ${quote(e.dir)};`,
      `  Pseudo = ${quote(e.pseudo)};`,
      '  Access_Type = RO;',
      '  Squash = No_Root_Squash;',
      '  Protocols = 3, 4;',
      '  Transports = TCP;',
      '  SecType = sys;',
      '  FSAL { Name = VFS; }',
      '}',
    ].join('\n'),
  );
  return `# Written by diskless-node's boot test (state in ${o.stateDir}).
NFS_CORE_PARAM {
  Protocols = 3, 4;
  NFS_Port = ${NFS_PORT};
  MNT_Port = ${MOUNT_PORT};
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
  Mount_Path_Pseudo = true;
}
NFSV4 {
  Graceless = true;
  RecoveryRoot = ${quote(path.join(o.stateDir, 'recovery'))};
}
NFS_KRB5 {
  Active_krb5 = false;
}
LOG {
  Default_Log_Level = EVENT;
}
${blocks.join('\n')}
`;
}

/** Waits until every port accepts connections, or fails when `program` exits first. */
async function waitForPorts(
  ns: Namespace,
  ports: readonly number[],
  program: Started,
  log: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await listeningPorts(ns);
    if (ports.every((p) => open.has(p))) return;
    const exited = program.done();
    if (exited || Date.now() > deadline) {
      const what = exited
        ? `exited (${String(await program.exited)}) before it served ports ${ports.join(', ')}`
        : `did not serve ports ${ports.join(', ')} within ${timeoutMs / 1000} s`;
      const why = lastLines(await readFile(log, 'utf8').catch(() => ''), 8);
      throw new DisklessError(`${program.name} ${what}: ${why}`);
    }
    await sleep(200);
  }
}

export interface NfsServer {
  /** Stops ganesha and rpcbind. */
  stop: () => Promise<void>;
}

/** Starts rpcbind and nfs-ganesha with `exports` in `ns`, their files in `dir`. */
export async function startNfsServer(
  procs: Processes,
  ns: Namespace,
  o: { dir: string; exports: readonly NfsExport[] },
  reporter: Reporter,
): Promise<NfsServer> {
  const exports: NfsExport[] = [];
  for (const e of o.exports) {
    if (!path.isAbsolute(e.pseudo) || e.pseudo === '/') {
      throw new DisklessError(`NFS export ${e.pseudo}: expected an absolute path other than /`);
    }
    const dir = await realpath(e.dir).catch(() => undefined);
    if (!dir || !(await stat(dir)).isDirectory()) {
      throw new DisklessError(`NFS export ${e.pseudo}: ${e.dir} is not a directory`);
    }
    const pseudo = path.normalize(e.pseudo).replace(/\/+$/, '');
    if (exports.some((x) => x.pseudo === pseudo)) {
      throw new DisklessError(`NFS export ${pseudo}: given twice`);
    }
    exports.push({ pseudo, dir });
  }
  await mkdir(path.join(o.dir, 'recovery'), { recursive: true });
  const started: Started[] = [];
  const stop = async (): Promise<void> => {
    for (const p of started.reverse()) await procs.stop(p);
  };
  try {
    // Not `rpcbind -h 127.0.0.1`: it crashes on bookworm (e2e-boot.md). The namespace is
    // reached only through QEMU's forwards (boot test) or the local cloud's bridge.
    const rpcbindLog = path.join(o.dir, 'rpcbind.log');
    const rpcbind = await ns.start('rpcbind', 'rpcbind', ['-f'], {
      log: rpcbindLog,
      debianPackage: 'rpcbind',
    });
    started.push(rpcbind);
    await waitForPorts(ns, [PORTMAP_PORT], rpcbind, rpcbindLog, 10_000);
    reporter.info(`rpcbind: started, pid ${rpcbind.pid}`);
    const config = path.join(o.dir, 'ganesha.conf');
    await writeFile(config, ganeshaConfig(exports, { stateDir: o.dir }));
    const log = path.join(o.dir, 'ganesha.log');
    const ganesha = await ns.start(
      'ganesha.nfsd',
      'ganesha.nfsd',
      ['-F', '-f', config, '-L', log, '-p', path.join(o.dir, 'ganesha.pid')],
      { log: path.join(o.dir, 'ganesha.out'), debianPackage: 'nfs-ganesha-vfs' },
    );
    started.push(ganesha);
    await waitForPorts(ns, [NFS_PORT, MOUNT_PORT], ganesha, log, 30_000);
    reporter.info(`nfs-ganesha: started, pid ${ganesha.pid}, serving`);
    for (const e of exports) reporter.info(`  ${e.pseudo} <- ${e.dir} (read-only)`);
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
