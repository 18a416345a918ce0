/**
 * The emulator's answers: after the injected latency, each body paced through the
 * connection's and the link's bandwidth caps, in slices, without unbounded buffering.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reply } from './reply.js';
import type { EmulatorState } from './state.js';

/** Resolves on 'drain', or on 'close' when the client went away (no drain will come). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Sends a reply after the injected latency, its body paced through the caps. */
export async function send(
  state: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  reply: Reply,
): Promise<void> {
  const { picker, stats, link } = state;
  // 'close' comes after 'finish' (the body handed to the OS) or an abort: the socket holds
  // no part of the body any more. (A response closed already never gives it back: fine.)
  if (reply.release) res.once('close', reply.release);
  const latency = picker.current.latencyMs ?? 0;
  if (latency > 0) await sleep(latency);
  if (res.destroyed) return;
  stats.statuses[reply.status] = (stats.statuses[reply.status] ?? 0) + 1;
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(reply.body.length) });
  const pacer = state.link.pacerFor(req.socket);
  const slice = pacer.sliceSize();
  if (!Number.isFinite(slice)) {
    stats.bytesSent += reply.body.length;
    res.end(reply.body);
    return;
  }
  await link.carry(async () => {
    // (a getter: the socket can go away while we wait)
    const gone = () => res.destroyed;
    for (let at = 0; at < reply.body.length && !gone(); at += slice) {
      const part = reply.body.subarray(at, at + slice);
      await pacer.pass(part.length);
      stats.bytesSent += part.length;
      // Waiting for 'drain' after every slice would lose an event-loop turn each time;
      // a few slices in the buffer keep memory bounded without that.
      if (!res.write(part) && res.writableLength > 4 * slice) await drained(res);
    }
  });
  res.end();
}
