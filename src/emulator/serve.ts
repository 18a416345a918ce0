/**
 * How both emulators (ElasticStack and Proxmox VE) serve and stop. Their commands listen
 * for SIGINT and SIGTERM first (a caller may stop us as soon as it reads the URL), print
 * what a caller needs, serve until a signal or the caller's `stop`, then close. A failure
 * a user caused is one line and exit code 1; anything else is a bug and is thrown.
 */
import { once } from 'node:events';
import { DisklessError, errorMessage } from '../errors.js';

export async function serveUntilStopped(
  emulator: { close(): Promise<void> },
  print: () => void,
  stop?: AbortSignal,
): Promise<number> {
  const stopped = new AbortController();
  const onSignal = () => {
    stopped.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const signals = [stopped.signal, ...(stop ? [stop] : [])];
  try {
    print();
    if (!signals.some((s) => s.aborted)) await once(AbortSignal.any(signals), 'abort');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await emulator.close();
  console.error('diskless emulator: stopped');
  return 0;
}

/** The exit code of an emulator command that failed (see the header). */
export function commandFailed(error: unknown): number {
  if (!(error instanceof DisklessError) && (error as NodeJS.ErrnoException).code === undefined)
    throw error;
  console.error(`diskless emulator: ${errorMessage(error)}`);
  return 1;
}

/**
 * Stops an emulator's HTTP(S) server: no new connections, open ones cut, and every
 * request already being handled finished (its writes reach the disk) before it resolves.
 */
export async function closeHttpServer(
  server: { close(done: () => void): unknown; closeAllConnections(): void },
  inflight: ReadonlySet<Promise<void>>,
): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  server.closeAllConnections();
  await Promise.allSettled([...inflight]);
  await closed;
}
