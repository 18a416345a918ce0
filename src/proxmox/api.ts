/**
 * Client of the Proxmox VE API: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`
 * (the secret never in a message), parameters as a query string (GET, DELETE) or a
 * form body (POST, PUT), answers unwrapped from `{"data": …}` and failures turned into
 * one-line errors naming the call. One undici agent, certificates checked as
 * ./tls.ts says. The ISO upload streams its multipart body from the file.
 */
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { DisklessError, InputError } from '../errors.js';
import { NetworkError, PveApiError } from './api-error.js';
import { pveDispatcher, type PveTls } from './tls.js';

/** `user@realm!tokenid`, as Proxmox names an API token. */
export const TOKEN_ID = /^[^\s!@:=]+@[^\s!@:=]+![A-Za-z][A-Za-z0-9._-]*$/;

export interface PveApiOptions {
  /** The API's address, e.g. https://pve.example:8006 (with or without /api2/json). */
  url: string;
  /** `user@realm!tokenid`. */
  tokenId: string;
  secret: string;
  tls: PveTls;
  /** How long an answer (its headers) may take once the request is sent; default 5 min. */
  timeoutMs?: number;
}

export type Params = Record<string, string | number | boolean | undefined>;

function formOf(params: Params): URLSearchParams {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    form.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  return form;
}

/** The upload's multipart parts around the file, in the order Proxmox parses them. */
export function uploadFraming(
  boundary: string,
  filename: string,
  checksum: { algorithm: string; value: string } | undefined,
): { head: Buffer; tail: Buffer } {
  const part = (name: string, value: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head =
    part('content', 'iso') +
    (checksum
      ? part('checksum-algorithm', checksum.algorithm) + part('checksum', checksum.value)
      : '') +
    `--${boundary}\r\nContent-Disposition: form-data; name="filename"; filename="${filename}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  return { head: Buffer.from(head), tail: Buffer.from(`\r\n--${boundary}--\r\n`) };
}

export class PveApi {
  /** https://host:port/api2/json, no trailing slash. */
  readonly base: string;
  private readonly auth: string;
  private readonly agent: Agent;

  constructor(o: PveApiOptions) {
    let url: URL;
    try {
      url = new URL(o.url);
    } catch {
      url = new URL('invalid://');
    }
    if (url.protocol !== 'https:') {
      throw new InputError(
        'api-url',
        `Invalid api-url ${JSON.stringify(o.url)}: expected https://host:8006 (Proxmox serves its API over HTTPS only)`,
      );
    }
    const path = url.pathname.replace(/\/+$/, '').replace(/\/api2\/json$/, '');
    this.base = `${url.origin}${path}/api2/json`;
    if (!TOKEN_ID.test(o.tokenId)) {
      throw new InputError(
        'token-id',
        `Invalid token-id ${JSON.stringify(o.tokenId)}: expected user@realm!tokenid, e.g. ci@pve!diskless`,
      );
    }
    if (o.secret === '' || /\s/.test(o.secret)) {
      throw new InputError(
        'token-secret',
        "Invalid token-secret: expected the token's secret, non-empty, no spaces",
      );
    }
    this.auth = `PVEAPIToken=${o.tokenId}=${o.secret}`;
    const timeout = o.timeoutMs ?? 300_000;
    this.agent = pveDispatcher(o.tls, {
      connections: 4,
      keepAliveTimeout: 30_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  /** One call; its `data`. `what` names it in errors: METHOD and the full URL. */
  async call<T = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    params: Params = {},
  ): Promise<T> {
    const form = formOf(params);
    const query = method === 'GET' || method === 'DELETE';
    const url = `${this.base}${path}${query && form.size > 0 ? `?${form.toString()}` : ''}`;
    return this.exchange<T>(`${method} ${this.base}${path}`, url, {
      method,
      headers: query ? {} : { 'content-type': 'application/x-www-form-urlencoded' },
      body: query ? undefined : form.toString(),
    });
  }

  /**
   * POST …/upload: `file` (of `size` bytes) as `filename`, with its checksum, streamed;
   * `onBytes` hears the file's bytes as they go. Returns the task's UPID.
   */
  async uploadIso(
    node: string,
    storage: string,
    file: string,
    size: number,
    filename: string,
    checksum: { algorithm: string; value: string },
    onBytes: (n: number) => void,
  ): Promise<string> {
    const boundary = `----diskless${randomBytes(12).toString('hex')}`;
    const { head, tail } = uploadFraming(boundary, filename, checksum);
    async function* body(): AsyncGenerator<Buffer> {
      yield head;
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
        onBytes((chunk as Buffer).length);
        yield chunk as Buffer;
      }
      yield tail;
    }
    const path = `/nodes/${encodeURIComponent(node)}/storage/${encodeURIComponent(storage)}/upload`;
    return this.exchange<string>(`POST ${this.base}${path}`, `${this.base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + size + tail.length),
      },
      body: Readable.from(body(), { objectMode: false }),
      expectedLength: head.length + size + tail.length,
    });
  }

  private async exchange<T>(
    what: string,
    url: string,
    o: {
      method: Dispatcher.HttpMethod;
      headers: Record<string, string>;
      body: string | Readable | undefined;
      expectedLength?: number;
    },
  ): Promise<T> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: new URL(url).origin,
        path: url.slice(new URL(url).origin.length),
        method: o.method,
        headers: { authorization: this.auth, accept: 'application/json', ...o.headers },
        body: o.body,
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
        throw new DisklessError(
          `${what}: the file streamed did not have the ${String(o.expectedLength)} bytes announced: it changed while being sent`,
        );
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = code ?? cause?.code ?? (error as Error).message;
      throw new NetworkError(
        what,
        /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(why)
          ? `${why}: the server's certificate is not trusted; name its CA (tls-ca-file) or pin its fingerprint (tls-fingerprint)`
          : why,
        error,
      );
    }
    const text = await res.body.text().catch(() => '');
    let json: { data?: unknown; message?: unknown; errors?: unknown } | undefined;
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      json = undefined;
    }
    if (res.statusCode >= 400) {
      const message = typeof json?.message === 'string' ? json.message.split('\n')[0] : undefined;
      const errors =
        json?.errors && typeof json.errors === 'object'
          ? (json.errors as Record<string, string>)
          : {};
      throw new PveApiError(res.statusCode, message ?? res.statusText, what, errors);
    }
    if (json === undefined || typeof json !== 'object' || !('data' in json)) {
      throw new DisklessError(
        `${what}: expected Proxmox's {"data": …} answer, got ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    return json.data as T;
  }
}
