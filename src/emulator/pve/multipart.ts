/**
 * The upload body as pve-http-server parses it (proxmox-api.md section 3): the text
 * parts `content`, then optionally `checksum-algorithm`, then `checksum`, in that order,
 * and last the file part `name="filename"; filename="<name>"`, whose bytes run up to the
 * closing boundary at the very end (a part after the file is swallowed into it). The
 * file goes to a temporary file as it arrives, hashed on the way, in bounded memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { failure, paramError } from './pve-error.js';

export const CHECKSUM_ALGORITHMS = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'];
/** The text parts, in the one order the parser accepts. */
const TEXT_PARTS = ['content', 'checksum-algorithm', 'checksum'];
/** Headers and text parts before the file: anything longer is not an upload. */
const MAX_HEAD = 64 * 1024;

export interface Upload {
  fields: Record<string, string>;
  filename: string;
  tmpFile: string;
  size: number;
  /** The file's digest with `checksum-algorithm`, when one was given and valid. */
  digest: string | undefined;
}

/** The boundary of a multipart/form-data Content-Type, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  const m = /^multipart\/form-data\s*;.*?boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType ?? '');
  return m ? (m[1] ?? m[2]) : undefined;
}

function dispositionOf(headers: string): {
  name: string;
  filename: string | undefined;
  line: string;
} {
  const line = headers.split('\r\n').find((l) => /^content-disposition:/i.test(l)) ?? '';
  const m =
    /^content-disposition:\s*form-data;\s*name="([^"]*)"(?:;\s*filename="([^"]*)")?\s*$/i.exec(
      line,
    );
  if (!m) throw failure(`wrong Content-Disposition '${line}'`);
  return { name: m[1] ?? '', filename: m[2], line };
}

/**
 * Parses the text parts of `head` up to the file part's headers; returns them, the file
 * name, and where the file's bytes start in `head`; undefined while more bytes are needed.
 */
function parseHead(
  head: Buffer,
  boundary: string,
): { fields: Record<string, string>; filename: string; dataAt: number } | undefined {
  const delimiter = `--${boundary}`;
  const text = head.toString('latin1');
  if (!text.startsWith(delimiter)) {
    if (text.length >= delimiter.length)
      throw failure('multipart body does not start with its boundary');
    return undefined;
  }
  const fields: Record<string, string> = {};
  let at = delimiter.length;
  let expected = 0;
  for (;;) {
    const headersEnd = text.indexOf('\r\n\r\n', at);
    if (headersEnd < 0) return undefined;
    const disposition = dispositionOf(text.slice(at + 2, headersEnd));
    if (disposition.filename !== undefined) {
      if (disposition.name !== 'filename') throw failure(`wrong field name '${disposition.name}'`);
      return { fields, filename: disposition.filename, dataAt: headersEnd + 4 };
    }
    if (disposition.name === 'filename') throw failure(`wrong field name 'filename'`);
    const index = TEXT_PARTS.indexOf(disposition.name, expected);
    if (index < 0) throw failure(`wrong Content-Disposition '${disposition.line}'`);
    expected = index + 1;
    const valueEnd = text.indexOf(`\r\n${delimiter}`, headersEnd + 4);
    if (valueEnd < 0) return undefined;
    fields[disposition.name] = Buffer.from(text.slice(headersEnd + 4, valueEnd), 'latin1').toString(
      'utf8',
    );
    at = valueEnd + 2 + delimiter.length;
  }
}

/** A hash of the algorithm named, or undefined when it is not one Proxmox knows. */
function hashOf(algorithm: string | undefined): Hash | undefined {
  return algorithm !== undefined && CHECKSUM_ALGORITHMS.includes(algorithm)
    ? createHash(algorithm)
    : undefined;
}

/**
 * Reads the whole upload body: text parts into `fields`, the file into `tmpFile`.
 * `onBytes` hears every chunk off the wire.
 */
export async function receiveUpload(
  req: IncomingMessage,
  boundary: string,
  tmpFile: string,
  onBytes: (n: number) => void,
  /** Waits until a chunk of `n` bytes has passed the (emulated) link. */
  pace: (n: number) => Promise<void> = () => Promise.resolve(),
): Promise<Upload> {
  const closing = Buffer.from(`\r\n--${boundary}`);
  const hold = closing.length + 4 + 512; // the closing delimiter, "--", CRLF, an epilogue
  let head: Buffer | undefined = Buffer.alloc(0);
  let parsed: ReturnType<typeof parseHead>;
  let held: Buffer = Buffer.alloc(0);
  let hash: Hash | undefined;
  let size = 0;
  const out = createWriteStream(tmpFile, { flags: 'wx' });
  const failed = once(out, 'error').then(([e]: unknown[]) => {
    throw e;
  });
  failed.catch(() => undefined);
  const write = async (data: Buffer) => {
    if (data.length === 0) return;
    hash?.update(data);
    size += data.length;
    if (!out.write(data)) await Promise.race([once(out, 'drain'), failed]);
  };
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      onBytes(chunk.length);
      await pace(chunk.length);
      let data = chunk;
      if (head !== undefined) {
        head = Buffer.concat([head, chunk]);
        parsed = parseHead(head, boundary);
        if (!parsed) {
          if (head.length > MAX_HEAD) throw failure('multipart body: no file part found');
          continue;
        }
        hash = hashOf(parsed.fields['checksum-algorithm']);
        data = head.subarray(parsed.dataAt);
        head = undefined;
      }
      held = held.length === 0 ? data : Buffer.concat([held, data]);
      if (held.length > hold + 65536) {
        await write(held.subarray(0, held.length - hold));
        held = Buffer.from(held.subarray(held.length - hold));
      }
    }
    if (!parsed) {
      // No file part at all: the parameter check names what is missing.
      throw paramError({ filename: 'property is missing and it is not optional' });
    }
    const end = held.lastIndexOf(closing);
    if (end < 0) throw failure('multipart body: no closing boundary after the file');
    await write(held.subarray(0, end));
    out.end();
    await Promise.race([once(out, 'close'), failed]);
    return {
      fields: parsed.fields,
      filename: parsed.filename,
      tmpFile,
      size,
      digest: hash?.digest('hex'),
    };
  } catch (error) {
    out.destroy();
    throw error;
  }
}
