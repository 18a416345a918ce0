/**
 * Client of the drives part of the ElasticStack HTTP API (ElasticHosts and other
 * ElasticStack clouds): HTTP Basic auth with the user UUID and secret key, JSON both
 * ways, kept-alive connections from one undici pool. It never logs or echoes the key.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { DisklessError } from '../errors.js';
import { DriveApiError, NetworkError, parseRetryAfter } from './api-error.js';
import { defaultRetryPolicy, withRetry, type RetryPolicy } from './retry.js';

export interface DriveInfo {
  uuid: string;
  name: string;
  size: number;
  claimType: string;
  /** Set while a server has the drive attached (or a copy reads or writes it). */
  claimed: string | undefined;
  /** Set while a server-side copy (the image call) writes the drive: true, queued or a %. */
  imaging: string | undefined;
  /** The user:* metadata, keys without the `user:` prefix. */
  meta: Record<string, string>;
  /** The drive's write counters; undefined when the API does not report them. */
  writeRequests: number | undefined;
  writeBytes: number | undefined;
}

export interface DriveApiOptions {
  url: string;
  user: string;
  key: string;
  /** Connections kept open to the API (one per request in flight). */
  connections: number;
  retry?: RetryPolicy;
  /** Told about every request that failed transiently and will be retried. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

type Json = Record<string, unknown>;

/** A write's body: a buffer (raw or gzip), or a stream of `length` raw bytes. */
export type WriteBody =
  { data: Buffer; gzip: boolean } | { data: Readable; gzip: false; length: number };

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map(String).join(' ');
  return undefined;
}

/** What came back, for an error line: its kind and its start, on one line. */
export function showAnswer(answer: unknown): string {
  if (answer === undefined) return 'an empty answer';
  const text = typeof answer === 'string' ? answer : JSON.stringify(answer);
  const kind =
    typeof answer === 'string'
      ? /^\s*</.test(answer)
        ? 'HTML'
        : 'text'
      : Array.isArray(answer)
        ? 'a JSON array'
        : answer === null
          ? 'JSON null'
          : `a JSON ${typeof answer}`;
  const flat = text.replace(/\s+/g, ' ').trim();
  return `${kind}: ${JSON.stringify(flat.length > 80 ? `${flat.slice(0, 77)}...` : flat)}`;
}

/** A drive object as the API documents it, or a one-line error naming the request. */
export function toDriveInfo(answer: unknown, request = 'the API'): DriveInfo {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    throw new DisklessError(
      `${request}: expected a drive (a JSON object), got ${showAnswer(answer)}`,
    );
  }
  const o = answer as Json;
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith('user:')) meta[k.slice(5)] = str(v) ?? '';
  }
  const size = num(o.size);
  const uuid = str(o.drive);
  if (!uuid || size === undefined) {
    throw new DisklessError(
      `${request}: expected a drive with "drive" and "size", got ${showAnswer(answer)}`,
    );
  }
  return {
    uuid,
    name: str(o.name) ?? '',
    size,
    claimType: str(o['claim:type']) ?? 'exclusive',
    claimed: str(o.claimed) || undefined,
    imaging: str(o.imaging) === 'false' ? undefined : str(o.imaging) || undefined,
    meta,
    writeRequests: num(o['write:requests']),
    writeBytes: num(o['write:bytes']),
  };
}

export class DriveApi {
  readonly url: URL;
  readonly user: string;
  private readonly pool: Pool;
  private readonly auth: string;
  private readonly retry: RetryPolicy;
  private readonly onRetry: DriveApiOptions['onRetry'];

  constructor(o: DriveApiOptions) {
    this.url = new URL(o.url.endsWith('/') ? o.url : `${o.url}/`);
    this.user = o.user;
    this.auth = `Basic ${Buffer.from(`${o.user}:${o.key}`).toString('base64')}`;
    this.retry = o.retry ?? defaultRetryPolicy;
    this.onRetry = o.onRetry;
    this.pool = new Pool(this.url.origin, {
      connections: o.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * One HTTP exchange; errors become DriveApiError or NetworkError. A successful answer's
   * body goes to `consume` (default: collected into one Buffer), so a large read can be
   * hashed as it streams in instead of being held whole.
   */
  private async exchange<T = Buffer>(
    method: 'GET' | 'POST',
    path: string,
    body?: { data: Buffer | string | Readable; type: string; gzip?: boolean; length?: number },
    consume: (body: AsyncIterable<Buffer>) => Promise<T> = collect as (
      b: AsyncIterable<Buffer>,
    ) => Promise<T>,
  ): Promise<T> {
    const target = new URL(path, this.url);
    const what = `${method} ${target.pathname}`;
    const headers: Record<string, string> = {
      authorization: this.auth,
      accept: 'application/json',
    };
    if (body) {
      headers['content-type'] = body.type;
      if (body.gzip) headers['content-encoding'] = 'gzip';
      // A stream has no length of its own: the API wants one (no chunked bodies), and
      // undici fails the request if the stream then brings more or fewer bytes.
      if (body.length !== undefined) headers['content-length'] = String(body.length);
    }
    const network = (error: unknown) =>
      new NetworkError(what, (error as { code?: string }).code ?? String(error), error);
    let res;
    try {
      res = await this.pool.request({
        method,
        path: target.pathname + target.search,
        headers,
        body: body?.data ?? (method === 'POST' ? '' : undefined),
      });
    } catch (error) {
      // A streamed body that ran short or long: the file changed under it, and sending it
      // again cannot help.
      if ((error as { code?: string }).code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
        throw new DisklessError(
          `${what}: the body streamed did not have the ${String(body?.length)} bytes announced: the file being sent changed`,
        );
      }
      throw network(error);
    }
    if (res.statusCode >= 400) {
      const text = await collect(res.body).catch(() => Buffer.alloc(0));
      const header = res.headers['x-elastic-error'];
      const type = (Array.isArray(header) ? header[0] : header)?.split(/\s+/)[0] ?? '';
      const retryAfter = res.headers['retry-after'];
      throw new DriveApiError(
        res.statusCode,
        type,
        text.toString('utf8').split('\n')[0]?.trim().slice(0, 300) ?? '',
        what,
        parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
      );
    }
    try {
      return await consume(res.body);
    } catch (error) {
      throw network(error);
    }
  }

  /** The request as errors name it: method and full URL (never credentials: none are in it). */
  requestName(method: 'GET' | 'POST', path: string): string {
    return `${method} ${new URL(path, this.url).href}`;
  }

  /**
   * A JSON answer (undefined when empty). Text or HTML where JSON was due (a proxy's
   * page, a wrong URL) is a one-line error naming the URL and what came back.
   */
  private async json(method: 'GET' | 'POST', path: string, input?: Json): Promise<unknown> {
    const body = input ? { data: JSON.stringify(input), type: 'application/json' } : undefined;
    const text = (await this.exchange(method, path, body)).toString('utf8').trim();
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new DisklessError(
        `${this.requestName(method, path)}: expected JSON, got ${showAnswer(text)}`,
      );
    }
  }

  /**
   * A drive object answer; an empty or other answer is a one-line error. `retry` only for
   * idempotent calls.
   */
  private async drive(
    method: 'GET' | 'POST',
    path: string,
    o: { input?: Json; retry: boolean },
  ): Promise<DriveInfo> {
    const call = () => this.json(method, path, o.input);
    const answer = o.retry ? await this.retried(call) : await call();
    return toDriveInfo(answer, this.requestName(method, path));
  }

  /** Retries an idempotent call on transient failures. */
  private retried<T>(work: () => Promise<T>): Promise<T> {
    return withRetry(work, this.retry, this.onRetry);
  }

  /**
   * Any other JSON call of the API (the servers calls): the answer as parsed JSON, or
   * undefined for an empty answer (204). `retry` only for calls that may be repeated.
   */
  async call(
    method: 'GET' | 'POST',
    path: string,
    o: { input?: Json; retry: boolean },
  ): Promise<unknown> {
    const call = () => this.json(method, path, o.input);
    return o.retry ? this.retried(call) : call();
  }

  /** Every drive; a listing that is not an array is an error, never "no drives". */
  async infoAll(): Promise<DriveInfo[]> {
    const request = this.requestName('GET', 'drives/info');
    const out = await this.retried(() => this.json('GET', 'drives/info'));
    if (!Array.isArray(out)) {
      throw new DisklessError(
        `${request}: expected a JSON array of drives, got ${showAnswer(out)}`,
      );
    }
    return out.map((d) => toDriveInfo(d, request));
  }

  info(uuid: string): Promise<DriveInfo> {
    return this.drive('GET', `drives/${uuid}/info`, { retry: true });
  }

  /** Not retried here: a create whose answer was lost may have happened (see createDrive). */
  create(fields: Record<string, string>): Promise<DriveInfo> {
    return this.drive('POST', 'drives/create', { input: fields, retry: false });
  }

  set(uuid: string, fields: Record<string, string>): Promise<DriveInfo> {
    return this.drive('POST', `drives/${uuid}/set`, { input: fields, retry: true });
  }

  /**
   * Starts a server-side copy of drive SOURCE onto DEST (asynchronous: poll DEST's
   * `imaging`). Not retried: a second call after a lost answer would queue a second copy.
   */
  async image(dest: string, source: string): Promise<void> {
    await this.json('POST', `drives/${dest}/image/${source}`);
  }

  /** Removes a drive and its data; not retried (a lost answer may have removed it). */
  async destroy(uuid: string): Promise<void> {
    await this.json('POST', `drives/${uuid}/destroy`);
  }

  /** Reads SIZE bytes at OFFSET (the API allows at most 4 MiB per read). */
  read(uuid: string, offset: number, size: number): Promise<Buffer> {
    return this.retried(() => this.exchange('GET', `drives/${uuid}/read/${offset}/${size}`));
  }

  /** sha256 and length of SIZE bytes at OFFSET, hashed as they stream in (bounded memory). */
  readDigest(
    uuid: string,
    offset: number,
    size: number,
  ): Promise<{ sha256: string; bytes: number }> {
    return this.retried(() =>
      this.exchange('GET', `drives/${uuid}/read/${offset}/${size}`, undefined, async (body) => {
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const part of body) {
          hash.update(part);
          bytes += part.length;
        }
        return { sha256: hash.digest('hex'), bytes };
      }),
    );
  }

  /**
   * One write request, not retried: the caller counts and schedules retries. The body is
   * a buffer, or a stream of exactly `length` raw bytes (read from the image as it goes).
   */
  async writeOnce(uuid: string, offset: number, body: WriteBody): Promise<void> {
    await this.exchange('POST', `drives/${uuid}/write/${offset}`, {
      type: 'application/octet-stream',
      ...body,
    });
  }
}
