/**
 * Reads a request body through the bandwidth pacers, one chunk at a time: the stream
 * is pulled only after the previous chunk's time has passed, so TCP back-pressure
 * slows the client down as a slow link would. At most `keep` bytes are kept in memory;
 * the rest is read (and paced) but dropped, so the client is not cut off mid-send.
 */
import type { IncomingMessage } from 'node:http';
import type { Pacer } from './bandwidth.js';

/** Thrown after a cut fault reset the connection: there is no one to answer. */
export class ConnectionCut extends Error {
  override name = 'ConnectionCut';
}

export interface BodyOptions {
  /** The connection's pacer (its share of the link). */
  pacer: Pacer;
  keep: number;
  /** Reset the connection (RST) once this many body bytes have been read. */
  cutAfter?: number;
  /** Takes each chunk as it arrives instead of keeping it (a write streamed to the drive). */
  sink?: ((chunk: Buffer) => Promise<void>) | undefined;
  /** Called with each chunk's size as it is read off the wire. */
  onBytes: (bytes: number) => void;
}

export interface Body {
  data: Buffer;
  /** Bytes received in all. */
  size: number;
  /** More than `keep` bytes came: `data` is incomplete and must not be used. */
  overLimit: boolean;
}

function cut(req: IncomingMessage): never {
  req.socket.resetAndDestroy();
  throw new ConnectionCut('connection reset by a cut fault');
}

export async function readBody(req: IncomingMessage, o: BodyOptions): Promise<Body> {
  if (o.cutAfter === 0) cut(req);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    o.onBytes(chunk.length);
    await Promise.all([o.pacer.pass(chunk.length), o.sink?.(chunk)]);
    if (o.cutAfter !== undefined && size >= o.cutAfter) cut(req);
    if (o.sink) continue;
    if (size <= o.keep) chunks.push(chunk);
    else chunks.length = 0; // over the limit: free what was kept, drain the rest
  }
  if (o.cutAfter !== undefined) cut(req); // the body was shorter than announced
  return { data: Buffer.concat(chunks), size, overLimit: size > o.keep };
}
