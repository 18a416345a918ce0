/**
 * One Proxmox API request: authenticates the API token, reads the parameters, routes the
 * call and answers in Proxmox's envelope, `{"data": …}` on success and the status text
 * plus `{"data":null,"message":…}` on failure, closing the connection after an error. The
 * upload call is handled apart (upload.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { authenticate } from './auth.js';
import { readParams } from './params.js';
import { errorBody, paramError, PveError, statusText } from './pve-error.js';
import { isUpload, route, WithSiblings, type Context } from './routes.js';
import type { PveState } from './state.js';
import { upload } from './upload.js';

const BASE = '/api2/json/';

export async function handle(
  state: PveState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  state.stats.requests += 1;
  try {
    const url = new URL(req.url ?? '/', 'https://pve');
    const parts = pathParts(req, url);
    const caller = authenticate(req.headers.authorization, state.tokens);
    const method = req.method ?? 'GET';
    let data: unknown;
    if (method === 'POST' && isUpload(parts)) {
      data = await upload(state, req, url, parts, caller);
      if (res.destroyed) return;
    } else {
      const handler = route(method, parts);
      const params = await readParams(req, url);
      const { nodes, storages, vms, tasks } = state;
      const context: Context = { caller, params, parts, nodes, storages, vms, tasks };
      data = await handler(context);
    }
    if (state.caps.latencyMs) await sleep(state.caps.latencyMs);
    if (res.destroyed) return;
    const envelope =
      data instanceof WithSiblings ? { data: data.data, ...data.siblings } : { data: data ?? null };
    send(state, res, 200, Buffer.from(JSON.stringify(envelope)));
  } catch (error) {
    await answerError(state, req, res, error);
  }
}

/** The API path's parts after /api2/json/, decoded. */
function pathParts(req: IncomingMessage, url: URL): string[] {
  if (!url.pathname.startsWith(BASE)) {
    throw new PveError(501, `Method '${req.method ?? 'GET'} ${url.pathname}' not implemented`);
  }
  try {
    return url.pathname
      .slice(BASE.length)
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
  } catch {
    throw paramError({ path: 'malformed URI escape' });
  }
}

function send(
  { stats }: PveState,
  res: ServerResponse,
  status: number,
  body: Buffer,
  text?: string,
): void {
  stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
  if (text !== undefined) res.statusMessage = text;
  res.writeHead(status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': String(body.length),
    ...(status >= 400 ? { connection: 'close' } : {}),
  });
  res.end(body);
}

async function sendError(state: PveState, res: ServerResponse, error: PveError): Promise<void> {
  if (error.delayed) await sleep(state.authDelay);
  if (state.caps.latencyMs) await sleep(state.caps.latencyMs);
  if (res.destroyed) return;
  send(state, res, error.status, errorBody(error), statusText(error.message));
}

/** The error answer, when anyone is still listening for one. */
async function answerError(
  state: PveState,
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
): Promise<void> {
  if (res.headersSent || res.destroyed) return;
  if (error instanceof PveError) {
    await sendError(state, res, error);
    return;
  }
  if (req.destroyed) return; // the client went away mid-body
  await sendError(
    state,
    res,
    new PveError(500, `internal error: ${error instanceof Error ? error.message : String(error)}`),
  );
}
