/**
 * The servers: their configuration on disk (<dataDir>/servers/<uuid>.json, replaced
 * atomically), their run state in memory (after a restart every server is stopped).
 * A running server claims its drives as `<user>:guest:<server>:<device>`; a server keeps
 * running with the configuration it was started with, so device changes made meanwhile
 * apply at its next start or reset. A non-persistent server is destroyed when it stops,
 * by a call or by itself (its guest powered off). With a runner each start boots a machine.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { replaceAtomic } from '../files.js';
import { EmulatorApiError, notFound } from './api-error.js';
import type { DriveStore } from './drive-store.js';
import type { Imaging } from './imaging.js';
import {
  applyServerChanges,
  checkServerConfig,
  serverDevices,
  type ServerConfig,
  type ServerMeta,
  type ServerRun,
} from './server-fields.js';
import type { RunningServer, ServerRunner } from './server-runner.js';

interface Entry {
  meta: ServerMeta;
  run?: ServerRun;
  machine?: RunningServer;
  /** A start, stop or reset in progress: other state changes wait for it (409 busy). */
  changing: boolean;
}

/** Addresses handed out to servers with nic:0:dhcp auto: x.y.z.15 and up (10.0.2 or the runner's network). */
const FIRST_AUTO_HOST = 15;
const LAST_AUTO_HOST = 253;

export class ServerStore {
  private readonly entries = new Map<string, Entry>();
  /** Addresses of servers whose machines are starting (not yet in their run). */
  private readonly booting = new Set<string>();

  private constructor(
    private readonly dir: string,
    private readonly drives: DriveStore,
    private readonly imaging: Imaging,
    private readonly runner: ServerRunner | undefined,
  ) {}

  static async open(
    dataDir: string,
    drives: DriveStore,
    imaging: Imaging,
    runner: ServerRunner | undefined,
  ): Promise<ServerStore> {
    const store = new ServerStore(path.join(dataDir, 'servers'), drives, imaging, runner);
    await mkdir(store.dir, { recursive: true });
    for (const file of await readdir(store.dir)) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      const meta = JSON.parse(await readFile(path.join(store.dir, file), 'utf8')) as ServerMeta;
      store.entries.set(meta.server, { meta, changing: false });
    }
    return store;
  }

  private file(uuid: string): string {
    return path.join(this.dir, `${uuid}.json`);
  }

  private async save(meta: ServerMeta): Promise<void> {
    await replaceAtomic(this.file(meta.server), (temp) =>
      writeFile(temp, `${JSON.stringify(meta, null, 2)}\n`),
    );
  }

  private entry(user: string, uuid: string): Entry {
    const e = this.entries.get(uuid.toLowerCase());
    if (!e || e.meta.user !== user) throw notFound('Server', uuid);
    return e;
  }

  /** The caller's servers by name, then UUID. */
  list(user: string): { meta: ServerMeta; run: ServerRun | undefined }[] {
    return [...this.entries.values()]
      .filter((e) => e.meta.user === user)
      .sort(
        (a, b) =>
          (a.meta.config.name ?? '').localeCompare(b.meta.config.name ?? '') ||
          a.meta.server.localeCompare(b.meta.server),
      )
      .map((e) => ({ meta: e.meta, run: e.run }));
  }

  get(user: string, uuid: string): { meta: ServerMeta; run: ServerRun | undefined } {
    const e = this.entry(user, uuid);
    return { meta: e.meta, run: e.run };
  }

  /** Claims of running servers on a drive: `<user>:guest:<server>:<device>`. */
  claimsOf(drive: string): string[] {
    const claims: string[] = [];
    for (const e of this.entries.values()) {
      if (!e.run) continue;
      for (const d of serverDevices(e.run.config)) {
        if (d.drive === drive) claims.push(`${e.meta.user}:guest:${e.meta.server}:${d.device}`);
      }
    }
    return claims;
  }

  /** Every drive a configuration names must exist and belong to the caller. */
  private checkDrives(user: string, config: ServerConfig): void {
    for (const d of serverDevices(config)) this.drives.get(user, d.drive);
  }

  async create(user: string, changes: ServerConfig, start: boolean): Promise<ServerMeta> {
    const config = applyServerChanges({}, changes);
    checkServerConfig(config);
    this.checkDrives(user, config);
    const meta: ServerMeta = { server: randomUUID(), user, config };
    const e: Entry = { meta, changing: false };
    this.entries.set(meta.server, e);
    await this.save(meta);
    if (start) {
      try {
        await this.start(user, meta.server);
      } catch (error) {
        // Created but not started (a drive is busy): the call fails, nothing is left.
        this.entries.delete(meta.server);
        await rm(this.file(meta.server), { force: true });
        throw error;
      }
    }
    return meta;
  }

  /** Changes the configuration; a running server picks device changes up at reset. */
  async set(user: string, uuid: string, changes: ServerConfig): Promise<ServerMeta> {
    const e = this.entry(user, uuid);
    const config = applyServerChanges(e.meta.config, changes);
    checkServerConfig(config);
    this.checkDrives(user, config);
    e.meta = { ...e.meta, config };
    await this.save(e.meta);
    return e.meta;
  }

  private claim<T>(e: Entry, work: () => Promise<T>): Promise<T> {
    if (e.changing) {
      throw new EmulatorApiError(
        'busy',
        `Server ${e.meta.server} is starting or stopping: try again when it is done`,
      );
    }
    e.changing = true;
    return work().finally(() => {
      e.changing = false;
    });
  }

  async start(user: string, uuid: string): Promise<void> {
    const e = this.entry(user, uuid);
    if (e.run) throw new EmulatorApiError('busy', `Server ${e.meta.server} is already running`);
    await this.claim(e, () => this.boot(e));
  }

  /** Starts the server's machine with its current configuration. */
  private async boot(e: Entry): Promise<void> {
    const config = e.meta.config;
    const devices = serverDevices(config);
    for (const d of devices) {
      const drive = this.drives.get(e.meta.user, d.drive);
      if (this.imaging.busy(drive.drive)) {
        throw new EmulatorApiError(
          'busy',
          `Drive ${drive.drive} is being imaged: wait until it is done`,
        );
      }
      const other = this.claimsOf(drive.drive).find((c) => !c.includes(`:${e.meta.server}:`));
      if (drive.claimType === 'exclusive' && other !== undefined) {
        throw new EmulatorApiError(
          'busy',
          `Drive ${drive.drive} is exclusive and claimed by ${other}: stop that server or make the drive shared`,
        );
      }
    }
    const ip = config['nic:0:dhcp'] === 'auto' ? this.freeAddress() : config['nic:0:dhcp'];
    let address: string;
    // Taken while the machine starts: a server started meanwhile gets another one.
    if (ip !== undefined) this.booting.add(ip);
    try {
      address = await this.startMachine(e, config, devices, ip);
    } finally {
      if (ip !== undefined) this.booting.delete(ip);
    }
    e.run = { started: Math.floor(Date.now() / 1000), config, ip: address };
  }

  /** With a runner, boots the machine; the address its NIC has (`ip` without a runner). */
  private async startMachine(
    e: Entry,
    config: ServerConfig,
    devices: ReturnType<typeof serverDevices>,
    ip: string | undefined,
  ): Promise<string> {
    let address = ip ?? '';
    if (this.runner) {
      const machine = await this.runner.start({
        server: e.meta.server,
        name: config.name ?? '',
        mem: Number(config.mem),
        smp: config.smp === undefined || config.smp === 'auto' ? 1 : Number(config.smp),
        drives: devices.map((d) => ({
          device: d.device,
          file: this.drives.dataFile(d.drive),
          media: d.media,
        })),
        boot: (config.boot ?? '').split(' ').filter((b) => b !== ''),
        nicModel: config['nic:0:model'] ?? 'e1000',
        ip,
      });
      e.machine = machine;
      address = machine.ip;
      void machine.exited.then(() => this.poweredOff(e, machine));
    }
    return address;
  }

  /** The lowest auto address no running server has. */
  private freeAddress(): string {
    const used = new Set([...this.entries.values()].map((e) => e.run?.ip));
    for (const ip of this.booting) used.add(ip);
    const prefix = this.runner?.network ?? '10.0.2';
    for (let host = FIRST_AUTO_HOST; host <= LAST_AUTO_HOST; host++) {
      if (!used.has(`${prefix}.${String(host)}`)) return `${prefix}.${String(host)}`;
    }
    throw new EmulatorApiError('full', 'No address left for another running server');
  }

  /** The guest stopped by itself: the server is stopped (and gone if not persistent). */
  private async poweredOff(e: Entry, machine: RunningServer): Promise<void> {
    if (e.machine !== machine) return; // stopped or reset by a call: that call handles it
    e.machine = undefined;
    e.run = undefined;
    await this.stopped(e);
  }

  private async stopped(e: Entry): Promise<void> {
    if (e.meta.config.persistent !== 'true') await this.forget(e);
  }

  private async forget(e: Entry): Promise<void> {
    this.entries.delete(e.meta.server);
    await rm(this.file(e.meta.server), { force: true });
  }

  /** Pulls the plug of a running server's machine. */
  private async halt(e: Entry): Promise<void> {
    const machine = e.machine;
    e.machine = undefined;
    e.run = undefined;
    await machine?.stop();
  }

  private running(user: string, uuid: string): Entry {
    const e = this.entry(user, uuid);
    if (!e.run) throw new EmulatorApiError('busy', `Server ${e.meta.server} is not running`);
    return e;
  }

  async stop(user: string, uuid: string): Promise<void> {
    const e = this.running(user, uuid);
    await this.claim(e, async () => {
      await this.halt(e);
      await this.stopped(e);
    });
  }

  /** ACPI power-down: a machine stops once its guest has shut down; state only, at once. */
  async shutdown(user: string, uuid: string): Promise<void> {
    const e = this.running(user, uuid);
    if (e.machine) {
      await e.machine.shutdown();
      return;
    }
    await this.stop(user, uuid);
  }

  /** Restarts the server with its current configuration (pending device changes apply). */
  async reset(user: string, uuid: string): Promise<void> {
    const e = this.running(user, uuid);
    await this.claim(e, async () => {
      await this.halt(e);
      try {
        await this.boot(e);
      } catch (error) {
        await this.stopped(e);
        throw error;
      }
    });
  }

  /** Destroys the server, stopping it first if it runs. */
  async destroy(user: string, uuid: string): Promise<void> {
    const e = this.entry(user, uuid);
    await this.claim(e, async () => {
      await this.halt(e);
      await this.forget(e);
    });
  }

  /** Stops every machine (at emulator shutdown); persistent servers stay, stopped. */
  async close(): Promise<void> {
    const running = [...this.entries.values()].filter((e) => e.run);
    await Promise.all(
      running.map(async (e) => {
        await this.halt(e);
        await this.stopped(e);
      }),
    );
    await this.runner?.close();
  }
}
