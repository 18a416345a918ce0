/**
 * Request parameters as pve-http-server reads them: the query string, merged with a
 * form-urlencoded or JSON body on POST/PUT (at most 512 KiB); a body on any other
 * method, or of another type, is refused (proxmox-api.md section 2).
 */
import type { IncomingMessage } from 'node:http';
import { paramError, PveError } from './pve-error.js';

const MAX_BODY = 512 * 1024;

function flatten(v: unknown): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

/** The query string and the body's parameters, in one map. */
export async function readParams(req: IncomingMessage, url: URL): Promise<Record<string, string>> {
  const params: Record<string, string> = Object.fromEntries(url.searchParams);
  const method = req.method ?? 'GET';
  const length = Number(req.headers['content-length'] ?? 0);
  if (req.headers['transfer-encoding'] !== undefined) {
    throw new PveError(501, 'chunked transfer encoding not supported');
  }
  if (length === 0) return params;
  if (method !== 'POST' && method !== 'PUT')
    throw new PveError(501, `Unexpected content for method '${method}'`);
  if (length > MAX_BODY) throw new PveError(501, 'Request body too large');
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
  } else if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new PveError(400, 'malformed JSON body');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new PveError(400, 'JSON body is not an object');
    }
    for (const [k, v] of Object.entries(parsed)) params[k] = flatten(v);
  } else {
    throw new PveError(506, `Unsupported content type '${type ?? ''}'`);
  }
  return params;
}

/** An integer parameter (path or body), with Proxmox's 400 texts. */
export function integerParam(name: string, raw: string, min?: number, max?: number): number {
  if (!/^-?\d+$/.test(raw))
    throw paramError({ [name]: `type check ('integer') failed - got '${raw}'` });
  const n = Number(raw);
  if (min !== undefined && n < min)
    throw paramError({ [name]: `value must have a minimum value of ${min}` });
  if (max !== undefined && n > max)
    throw paramError({ [name]: `value must have a maximum value of ${max}` });
  return n;
}

/** A boolean in form encoding: 1 or 0 (`true` is a 400, as in Proxmox). */
export function booleanParam(name: string, raw: string | undefined): boolean {
  if (raw === undefined) return false;
  if (raw !== '0' && raw !== '1')
    throw paramError({ [name]: `type check ('boolean') failed - got '${raw}'` });
  return raw === '1';
}
