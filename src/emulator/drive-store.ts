/**
 * The drives on disk: <dataDir>/drives/<uuid>.img is a sparse file sized to the drive
 * (a new drive reads as zeros without using space) and <uuid>.json its metadata and
 * counters, replaced atomically (temp file + rename) so a restart never sees half a
 * file. Every operation is checked against the caller's account: another account's
 * drive is reported missing, as if absent. Writes go to the data file as their bytes
 * come (see `writer`).
 */
import { randomUUID } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  truncate,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import { replaceAtomic } from '../files.js';
import { EmulatorApiError, driveMissing } from './api-error.js';
import type { DriveChanges, DriveMeta } from './drive-fields.js';
import { MAX_READ_BYTES } from './options.js';

interface Entry {
  meta: DriveMeta;
  destroyed: boolean;
  /** The last metadata save, so saves never overtake each other. */
  tail: Promise<void>;
  /** A save queued but not started yet: later callers share it (its snapshot is newer). */
  queued: Promise<void> | undefined;
}

/** A write in progress, fed in order; `end` must always be called, also after a failure. */
export interface DriveWriter {
  /** Writes the next bytes after those written so far. */
  write(data: Buffer): Promise<void>;
  /** Flushes (with fsync), closes, counts the request; returns the bytes written. */
  end(): Promise<number>;
}

function ioError(error: unknown, what: string): EmulatorApiError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT') {
    return new EmulatorApiError('full', `No space left to ${what}`);
  }
  return new EmulatorApiError('failed', `Could not ${what}: ${code ?? 'I/O error'}`);
}

/** Read buffers (MAX_READ_BYTES each) kept for the next reads. */
const SPARE_READ_BUFFERS = 16;

export class DriveStore {
  private readonly entries = new Map<string, Entry>();
  /** Buffers of answered reads, reused by the next ones. */
  private readonly spare: Buffer[] = [];

  private constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  static async open(dataDir: string, fsync: boolean): Promise<DriveStore> {
    const store = new DriveStore(path.join(dataDir, 'drives'), fsync);
    await mkdir(store.dir, { recursive: true });
    for (const file of await readdir(store.dir)) {
      if (file.includes('.tmp-')) {
        await rm(path.join(store.dir, file), { force: true }); // an interrupted save
        continue;
      }
      if (!file.endsWith('.json')) continue;
      const meta = JSON.parse(await readFile(path.join(store.dir, file), 'utf8')) as DriveMeta;
      // The data file is made before the metadata; recreate it (as zeros) if lost.
      const handle = await open(store.dataFile(meta.drive), 'a');
      await handle.truncate(meta.size);
      await handle.close();
      store.entries.set(meta.drive, {
        meta,
        destroyed: false,
        tail: Promise.resolve(),
        queued: undefined,
      });
    }
    return store;
  }

  /** The file holding a drive's bytes (for the image call and the server runner). */
  dataFile(uuid: string): string {
    return path.join(this.dir, `${uuid}.img`);
  }

  private metaPath(uuid: string): string {
    return path.join(this.dir, `${uuid}.json`);
  }

  /** The caller's drives, oldest first by name then UUID for a stable listing. */
  list(user: string): DriveMeta[] {
    return [...this.entries.values()]
      .filter((e) => e.meta.user === user)
      .map((e) => e.meta)
      .sort((a, b) => a.name.localeCompare(b.name) || a.drive.localeCompare(b.drive));
  }

  private entry(user: string, uuid: string): Entry {
    const e = this.entries.get(uuid.toLowerCase());
    if (!e || e.destroyed || e.meta.user !== user) throw driveMissing(uuid);
    return e;
  }

  get(user: string, uuid: string): DriveMeta {
    return this.entry(user, uuid).meta;
  }

  /** `serviceWrite`: count the 4 KiB write the real service makes to a new drive. */
  async create(user: string, changes: DriveChanges, serviceWrite = false): Promise<DriveMeta> {
    const meta: DriveMeta = {
      drive: randomUUID(),
      name: changes.name ?? '',
      size: changes.size ?? 0,
      user,
      claimType: changes.claimType ?? 'exclusive',
      readers: changes.readers ?? [],
      tags: changes.tags ?? [],
      userKeys: Object.fromEntries(
        Object.entries(changes.userKeys ?? {}).filter(([, v]) => v !== ''),
      ),
      encryptionCipher: changes.encryptionCipher ?? 'aes-xts-plain',
      tier: changes.tier ?? 'disk',
      counters: {
        readBytes: 0,
        readRequests: 0,
        writeBytes: serviceWrite ? 4096 : 0,
        writeRequests: serviceWrite ? 1 : 0,
      },
    };
    try {
      await writeFile(this.dataFile(meta.drive), '');
      await truncate(this.dataFile(meta.drive), meta.size);
    } catch (error) {
      await rm(this.dataFile(meta.drive), { force: true });
      throw ioError(error, `create a drive of ${meta.size} bytes`);
    }
    const e: Entry = { meta, destroyed: false, tail: Promise.resolve(), queued: undefined };
    this.entries.set(meta.drive, e);
    await this.save(e);
    return meta;
  }

  async update(user: string, uuid: string, changes: DriveChanges): Promise<DriveMeta> {
    const e = this.entry(user, uuid);
    if (changes.size !== undefined && changes.size !== e.meta.size) {
      try {
        await truncate(this.dataFile(e.meta.drive), changes.size);
      } catch (error) {
        throw ioError(error, `resize drive ${e.meta.drive}`);
      }
    }
    const userKeys = { ...e.meta.userKeys, ...changes.userKeys };
    e.meta = {
      ...e.meta,
      name: changes.name ?? e.meta.name,
      size: changes.size ?? e.meta.size,
      claimType: changes.claimType ?? e.meta.claimType,
      readers: changes.readers ?? e.meta.readers,
      tags: changes.tags ?? e.meta.tags,
      userKeys: Object.fromEntries(Object.entries(userKeys).filter(([, v]) => v !== '')),
    };
    await this.save(e);
    return e.meta;
  }

  async destroy(user: string, uuid: string): Promise<void> {
    const e = this.entry(user, uuid);
    e.destroyed = true;
    this.entries.delete(e.meta.drive);
    await e.tail; // a save still running must not bring the metadata back
    await rm(this.metaPath(e.meta.drive), { force: true });
    await rm(this.dataFile(e.meta.drive), { force: true });
  }

  /**
   * Reads and writes must lie inside the drive: past the end is 400 usage and nothing is
   * read or written (the service's behaviour is not documented; refusing, rather than
   * trimming a read, makes a client that relies on either show up here).
   */
  private checkRange(e: Entry, offset: number, length: number, verb: string): void {
    if (offset + length > e.meta.size) {
      throw new EmulatorApiError(
        'usage',
        `Cannot ${verb} ${length} bytes at offset ${offset}: drive ${e.meta.drive} has ${e.meta.size} bytes`,
      );
    }
  }

  /**
   * A range of a drive, in a buffer kept for reuse: `release` gives it back once the answer
   * is sent. Nine concurrent 4 MiB reads left to the garbage collector made it pause the
   * emulator for 20 ms or more, holding the next answers back beyond the latency asked for.
   */
  async read(
    user: string,
    uuid: string,
    offset: number,
    length: number,
  ): Promise<{ data: Buffer; release: () => void }> {
    const e = this.entry(user, uuid);
    this.checkRange(e, offset, length, 'read');
    const pooled = length <= MAX_READ_BYTES;
    const whole =
      (pooled && this.spare.pop()) || Buffer.allocUnsafe(pooled ? MAX_READ_BYTES : length);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (pooled && this.spare.length < SPARE_READ_BUFFERS) this.spare.push(whole);
    };
    const data = whole.subarray(0, length);
    try {
      const handle = await open(this.dataFile(e.meta.drive), 'r');
      try {
        for (let done = 0; done < length;) {
          const { bytesRead } = await handle.read(data, done, length - done, offset + done);
          if (bytesRead === 0) {
            data.fill(0, done); // shrunk underneath us: the rest reads as zeros
            break;
          }
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      e.meta.counters.readBytes += length;
      e.meta.counters.readRequests += 1;
      await this.save(e);
    } catch (error) {
      release();
      if (error instanceof EmulatorApiError) throw error;
      throw ioError(error, `read drive ${e.meta.drive}`);
    }
    return { data, release };
  }

  /** Resolves once the bytes are in the drive file (and on disk with fsync). */
  async write(user: string, uuid: string, offset: number, data: Buffer): Promise<void> {
    const writer = await this.writer(user, uuid, offset, data.length);
    try {
      await writer.write(data);
    } finally {
      await writer.end();
    }
  }

  /**
   * Opens a write of `length` bytes at `offset`, the range checked first (nothing is
   * written past the end). The bytes go into the drive file as they are handed over, so
   * a body is stored while it arrives, as a real service streams it to its disks.
   */
  async writer(user: string, uuid: string, offset: number, length: number): Promise<DriveWriter> {
    const e = this.entry(user, uuid);
    this.checkRange(e, offset, length, 'write');
    const where = `write drive ${e.meta.drive}`;
    let handle: FileHandle;
    try {
      handle = await open(this.dataFile(e.meta.drive), 'r+');
    } catch (error) {
      throw ioError(error, where);
    }
    let written = 0;
    return {
      write: async (data) => {
        if (written + data.length > length) {
          throw new EmulatorApiError(
            'usage',
            `Write refused: more than the ${length} bytes announced`,
          );
        }
        try {
          for (let done = 0; done < data.length;) {
            const { bytesWritten } = await handle.write(
              data,
              done,
              data.length - done,
              offset + written,
            );
            done += bytesWritten;
            written += bytesWritten;
          }
        } catch (error) {
          throw ioError(error, where);
        }
      },
      end: async () => {
        // Counted at once, and even when cut short: what reached the drive changed it.
        e.meta.counters.writeBytes += written;
        e.meta.counters.writeRequests += 1;
        try {
          if (this.fsync) await handle.sync();
        } catch (error) {
          throw ioError(error, where);
        } finally {
          await handle.close();
          await this.save(e);
        }
        return written;
      },
    };
  }

  /** Saves the metadata as it is when the save runs; concurrent callers share a save. */
  private save(e: Entry): Promise<void> {
    if (e.queued) return e.queued;
    const run = e.tail.then(async () => {
      e.queued = undefined;
      if (e.destroyed) return;
      await replaceAtomic(this.metaPath(e.meta.drive), async (temp) => {
        const handle = await open(temp, 'w');
        try {
          await handle.writeFile(`${JSON.stringify(e.meta, null, 2)}\n`);
          if (this.fsync) await handle.sync();
        } finally {
          await handle.close();
        }
      });
    });
    e.tail = run.catch(() => undefined);
    e.queued = run.catch((error: unknown) => {
      throw ioError(error, `save drive ${e.meta.drive}`);
    });
    return e.queued;
  }

  /** Waits for every metadata save in progress. */
  async flush(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.tail));
  }
}
