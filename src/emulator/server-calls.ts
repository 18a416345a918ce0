/**
 * The servers calls (elastichosts-api.md section 5): create (started) and create/stopped,
 * list, info, set answer with the server's info; start, stop, shutdown, reset and destroy
 * answer 204 No Content, as the clients on record expect.
 */
import type { IncomingMessage } from 'node:http';
import { NO_CONTENT, rendered, type Reply } from './reply.js';
import type { ServerEndpoint } from './routes.js';
import {
  parseServerChanges,
  serverInfo,
  type ServerMeta,
  type ServerRun,
} from './server-fields.js';
import type { ServerStore } from './server-store.js';
import { parseFields, renderList, renderObject, renderObjects, wantsJson } from './wire-format.js';

export interface ServerCall {
  endpoint: ServerEndpoint;
  uuid: string | undefined;
  /** create: start it too (false for create/stopped). */
  start: boolean;
}

export async function serverCall(
  servers: ServerStore,
  req: IncomingMessage,
  user: string,
  call: ServerCall,
  body: Buffer,
  omitDefaults: boolean,
): Promise<Reply> {
  const json = wantsJson(req.headers.accept);
  const info = (s: { meta: ServerMeta; run: ServerRun | undefined }) =>
    serverInfo(s.meta, s.run, omitDefaults);
  const one = (uuid: string) => rendered(renderObject(info(servers.get(user, uuid)), json));
  const uuid = call.uuid ?? '';
  const changes = (mode: 'create' | 'set') =>
    parseServerChanges(parseFields(body, req.headers['content-type']), mode);
  switch (call.endpoint) {
    case 'list':
      return rendered(
        renderList(
          'server',
          servers.list(user).map((s) => s.meta.server),
          json,
        ),
      );
    case 'info':
      return call.uuid === undefined
        ? rendered(renderObjects(servers.list(user).map(info), json))
        : one(uuid);
    case 'create':
      return one((await servers.create(user, changes('create'), call.start)).server);
    case 'set':
      servers.get(user, uuid); // 404 before 400: the server must exist
      return one((await servers.set(user, uuid, changes('set'))).server);
    case 'start':
    case 'stop':
    case 'shutdown':
    case 'reset':
    case 'destroy':
      await servers[call.endpoint](user, uuid);
      return NO_CONTENT;
  }
}
