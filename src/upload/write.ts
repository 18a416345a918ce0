/**
 * The writing half of an upload, shared by both modes: send the planned chunks (journalled,
 * so a killed run resumes), read back what must be checked, rewrite what differs, and
 * record on the drive what it now holds. The write counters are asked for while the
 * verify reads run: they are final once the writes are.
 */
import type { DriveApi, DriveInfo } from '../drive/api.js';
import type { RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage } from '../errors.js';
import { formatBytes } from '../inputs/fields.js';
import type { Reporter } from '../report.js';
import { imageIdentity, type ImageDigests } from './image.js';
import { countersOf, openJournal, type Journal } from './journal.js';
import type { Plan } from './plan.js';
import { startProgress } from './progress.js';
import { encodeRecord, shortDigest } from './record.js';
import { sendChunks, type Transfer, type TransferStats } from './transfer.js';
import { findMismatches, readBackPlan } from './verify.js';

export type Phase = <T>(key: string, title: string, work: () => Promise<T>) => Promise<T>;

export interface WriteContext {
  api: DriveApi;
  policy: RetryPolicy;
  stats: TransferStats;
  digests: ImageDigests;
  plan: Plan;
  /** The drive written, as it was before this run's writes. */
  drive: DriveInfo;
  image: string;
  chunkSize: number;
  concurrency: number;
  verify: 'none' | 'sample' | 'full';
  stateDir: string;
  /** The image file's identity when it was hashed (imageIdentity). */
  identity: string;
  /** Recorded with the image: the release it boots. */
  release: string | undefined;
  /** Write the record while a sampled read-back runs (in-place mode; see writePlan). */
  recordEarly?: boolean;
  /** Told once the drive is verified, before the record is written (work to overlap it). */
  verified?: () => void;
  /** Refuses a rewrite of chunks found different (a reused drive a server runs from). */
  rewriteGuard?: (bad: number[]) => Promise<void>;
}

export interface WriteOutcome {
  chunksVerified: number;
  chunksRewritten: number;
  bytesRead: number;
}

/** Sends the plan, verifies, and records what the drive holds. */
export async function writePlan(
  c: WriteContext,
  reporter: Reporter,
  phase: Phase,
): Promise<WriteOutcome> {
  const { api, stats, digests, plan } = c;
  const uuid = c.drive.uuid;
  const out: WriteOutcome = { chunksVerified: 0, chunksRewritten: 0, bytesRead: 0 };
  const transfer: Omit<Transfer, 'confirmed'> = {
    api,
    drive: uuid,
    image: c.image,
    digests,
    concurrency: c.concurrency,
    policy: c.policy,
    stats,
    onRetry: (index, error, attempt, delay) => {
      reporter.debug(`chunk ${index}: retry ${attempt} in ${delay} ms: ${errorMessage(error)}`);
    },
  };
  const journal = plan.todo.length > 0 ? await openWriteJournal(c) : undefined;
  // The read-back starts at once: chunks this run does not send (a server-side copy's, a
  // resumed run's) are read while the others go out, and each sent chunk as soon as it is
  // confirmed, so the reads overlap the writes instead of following them.
  const checks = readBackPlan(c.verify, plan, digests.chunks.length);
  const reading = checks.size > 0 ? readBack(c, checks, out) : undefined;
  try {
    if (journal) await send(c, journal, transfer, reporter, phase, reading?.add);
  } catch (error) {
    await reading?.done().catch(() => undefined);
    throw error;
  }

  // The write counters are final once the writes are: ask for them while verifying, and
  // journal them, so a later run can tell whether anyone wrote to the drive since.
  const counters = plan.upToDate ? undefined : api.info(uuid);
  const seen = counters?.then((d) => journal?.seen(countersOf(d)));
  seen?.catch(() => undefined);
  // With a sampled read-back (in-place mode), the record does not wait for the sample: it
  // goes out while the reads run. A chunk found wrong is then rewritten, which moves the
  // write counters on, so that record is no longer trusted and is written again below.
  // A full read-back (and standby mode) waits: there a record means "read back whole".
  const earlyRecord =
    c.recordEarly && counters && c.verify !== 'full'
      ? (async () => {
          await checkIdentity(c);
          await seen;
          await writeRecord(c, await counters, reporter);
        })()
      : undefined;
  earlyRecord?.catch(() => undefined); // awaited after the verify
  if (reading) await verify(c, { checks, reading, transfer, out }, reporter, phase);

  await earlyRecord;
  await checkIdentity(c);
  c.verified?.();
  // An up-to-date drive keeps its record, unless verifying it rewrote chunks.
  if ((!plan.upToDate && !earlyRecord) || out.chunksRewritten > 0) {
    await phase('record', 'Record what the drive holds', async () => {
      // A rewrite during verification moved the counters on: ask again.
      await seen;
      const now = out.chunksRewritten > 0 || !counters ? await api.info(uuid) : await counters;
      await writeRecord(c, now, reporter);
    });
  }
  await journal?.remove();
  return out;
}

/** The journal of this run's writes (a killed run resumes from it). */
function openWriteJournal(c: WriteContext): Promise<Journal> {
  return openJournal(
    c.stateDir,
    {
      version: 2,
      drive: c.drive.uuid,
      sha256: c.digests.sha256,
      chunkSize: c.chunkSize,
      basis: c.plan.basis,
      record: c.drive.meta['diskless-sha256'] ?? '',
      writes: countersOf(c.drive),
    },
    c.plan.resumed,
  );
}

/** The verify phase: the read-back's result; chunks found different are rewritten once. */
async function verify(
  c: WriteContext,
  o: {
    checks: ReadonlyMap<number, 'whole' | 'one-piece'>;
    reading: ReadBack;
    transfer: Omit<Transfer, 'confirmed'>;
    out: WriteOutcome;
  },
  reporter: Reporter,
  phase: Phase,
): Promise<void> {
  const { api, digests } = c;
  const { checks, reading, out } = o;
  const uuid = c.drive.uuid;
  const whole = [...checks.values()].filter((how) => how === 'whole').length;
  const total = checks.size;
  await phase(
    'verify',
    `Verify ${total} chunks${whole === total ? '' : whole > 0 ? ` (${whole} not sent by this run whole, a piece of the others)` : ' (a piece of each)'}`,
    async () => {
      let bad = await reading.done();
      if (bad.length > 0) {
        await c.rewriteGuard?.(bad);
        reporter.warning(
          `drive ${uuid}: chunks ${bad.join(', ')} differ from the image; rewriting them`,
        );
        out.chunksRewritten = bad.length;
        await sendChunks({ ...o.transfer, confirmed: () => Promise.resolve() }, bad);
        bad = await findMismatches(api, uuid, c.image, digests, bad, c.concurrency, 'whole', out);
        if (bad.length > 0) {
          throw new DisklessError(
            `drive ${uuid}: chunks ${bad.join(', ')} still differ from the image after rewriting them`,
          );
        }
      }
      out.chunksVerified = total;
      reporter.info(
        `verified ${total} chunks${whole === total ? ' whole' : ''} (${formatBytes(out.bytesRead)} read back)${out.chunksRewritten ? ` (${out.chunksRewritten} rewritten)` : ''}: the drive matches the image`,
      );
    },
  );
}

/**
 * The chunks were sent as read after hashing; a file replaced or rewritten since would
 * have put a mix of two images on the drive: never record that as this image.
 */
async function checkIdentity(c: WriteContext): Promise<void> {
  if ((await imageIdentity(c.image)) !== c.identity) {
    throw new DisklessError(
      `Image ${c.image} changed while it was being uploaded; build it again, then upload`,
    );
  }
}

/** Records on the drive the image it holds, with the write counters `now`. */
async function writeRecord(c: WriteContext, now: DriveInfo, reporter: Reporter): Promise<void> {
  const { digests } = c;
  if (now.writeRequests === undefined || now.writeBytes === undefined) {
    reporter.warning('the API reports no write counters: the next upload will send every chunk');
    return;
  }
  await c.api.set(
    c.drive.uuid,
    encodeRecord({
      sha256: digests.sha256,
      size: digests.size,
      chunkSize: c.chunkSize,
      chunks: digests.chunks.map(shortDigest),
      writeRequests: now.writeRequests,
      writeBytes: now.writeBytes,
      release: c.release,
      uploaded: new Date().toISOString(),
    }),
  );
  reporter.info(
    `recorded image ${digests.sha256.slice(0, 16)}...${c.release ? `, release ${c.release},` : ''} and ${digests.chunks.length} chunk digests on the drive`,
  );
}

/**
 * Reads back what `checks` names, each chunk as soon as it is final: those the plan does
 * not send at once, the others read whole when `add` says they were confirmed (so these
 * reads overlap the writes of later chunks). `done` reads the rest (the samples of sent
 * chunks) and gives the chunks that differ once all are read.
 */
/** The read-back in progress: sent chunks join it as they are confirmed. */
interface ReadBack {
  add: (index: number) => void;
  done: () => Promise<number[]>;
}

function readBack(
  c: WriteContext,
  checks: ReadonlyMap<number, 'whole' | 'one-piece'>,
  out: WriteOutcome,
): ReadBack {
  const sending = new Set(c.plan.todo);
  const reads: Promise<number[]>[] = [];
  const added = new Set<number>();
  let reading = 0;
  const check = (indexes: number[]) => {
    for (const how of ['whole', 'one-piece'] as const) {
      const these = indexes.filter((i) => checks.get(i) === how);
      if (these.length === 0) continue;
      // Beside these: the writes not yet confirmed and the reads still running.
      const beside = c.plan.todo.length - added.size + reading;
      reading += these.length;
      const read = findMismatches(
        c.api,
        c.drive.uuid,
        c.image,
        c.digests,
        these,
        c.concurrency,
        how,
        out,
        beside,
      ).finally(() => (reading -= these.length));
      read.catch(() => undefined); // awaited in done(); must not go unhandled meanwhile
      reads.push(read);
    }
  };
  check([...checks.keys()].filter((i) => !sending.has(i)));
  return {
    add: (index) => {
      // A sample is left for done(): read during the send it would only slow the writes
      // down, read after it, it goes along with the record's round trips.
      if (added.has(index) || checks.get(index) !== 'whole') return;
      added.add(index);
      check([index]);
    },
    done: async () => {
      const rest = c.plan.todo.filter((i) => checks.has(i) && !added.has(i));
      for (const i of c.plan.todo) added.add(i); // every write is confirmed by now
      check(rest);
      const bad = (await Promise.all(reads)).flat();
      return [...new Set(bad)].sort((a, b) => a - b);
    },
  };
}

async function send(
  c: WriteContext,
  journal: Journal,
  transfer: Omit<Transfer, 'confirmed'>,
  reporter: Reporter,
  phase: Phase,
  confirmed: ((index: number) => void) | undefined,
): Promise<void> {
  const { plan, stats } = c;
  await phase('send', `Send ${plan.todo.length} chunks (${c.concurrency} at a time)`, async () => {
    const progress = startProgress(
      'upload',
      plan.todoBytes,
      (line) => {
        reporter.info(line);
      },
      () => stats.retries,
    );
    try {
      await sendChunks(
        {
          ...transfer,
          confirmed: async (i, bytes) => {
            progress.add(bytes);
            // The read-back does not wait for the journal's write: the server confirmed it.
            confirmed?.(i);
            await journal.confirm(i);
          },
        },
        plan.todo,
      );
    } finally {
      progress.stop();
    }
    reporter.info(
      `sent ${stats.chunksSent} chunks, ${stats.bytesSent} bytes on the wire (${stats.chunksCompressed} compressed), ${stats.retries} retries`,
    );
  });
}
