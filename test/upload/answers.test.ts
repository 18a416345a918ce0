// Answers the API does not document, from a real HTTP server: a proxy's HTML page, text,
// a listing that is not an array, an empty body to create or set. Each is one line that
// names the URL and what came back; never "no drives", never a stack trace.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DriveApi } from '../../src/drive/api.js';
import { DisklessError } from '../../src/errors.js';
import { rejected } from '../helpers/errors.js';
import { KEY, run, tmpDir, USER, writeImage } from './helpers.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((done) => server?.close(done));
  server = undefined;
});

/** A server that answers every request with `type` and `body` (status 200). */
async function answering(type: string, body: string): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': type });
      res.end(body);
    });
  });
  await new Promise<void>((done) => server?.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/api/`;
}

function client(url: string): DriveApi {
  return new DriveApi({ url, user: USER, key: KEY, connections: 2 });
}

async function failure(url: string, call: (api: DriveApi) => Promise<unknown>): Promise<string> {
  const api = client(url);
  try {
    const error = await rejected(DisklessError, call(api));
    expect(error.message).not.toContain('\n');
    expect(error.message).not.toContain(KEY);
    return error.message;
  } finally {
    await api.close();
  }
}

describe('answers the API does not document', () => {
  it('an HTML page instead of the drive listing', async () => {
    const url = await answering('text/html', '<html><body>502 Bad Gateway</body></html>');
    expect(await failure(url, (api) => api.infoAll())).toBe(
      `GET ${url}drives/info: expected JSON, got HTML: "<html><body>502 Bad Gateway</body></html>"`,
    );
  });

  it('a listing that is not an array is never "no drives"', async () => {
    const url = await answering('application/json', '{"drives": []}');
    expect(await failure(url, (api) => api.infoAll())).toBe(
      `GET ${url}drives/info: expected a JSON array of drives, got a JSON object: "{\\"drives\\":[]}"`,
    );
  });

  it('an empty answer to create or set', async () => {
    const url = await answering('application/json', '');
    expect(await failure(url, (api) => api.create({ name: 'x', size: '4096' }))).toBe(
      `POST ${url}drives/create: expected a drive (a JSON object), got an empty answer`,
    );
    expect(await failure(url, (api) => api.set('u-1', { name: 'x' }))).toBe(
      `POST ${url}drives/u-1/set: expected a drive (a JSON object), got an empty answer`,
    );
  });

  it('plain text, and a drive without its fields', async () => {
    const text = await answering('text/plain', 'Service temporarily unavailable');
    expect(await failure(text, (api) => api.info('u-1'))).toBe(
      `GET ${text}drives/u-1/info: expected JSON, got text: "Service temporarily unavailable"`,
    );
    await new Promise((done) => server?.close(done));
    const odd = await answering('application/json', '{"name": "boot"}');
    expect(await failure(odd, (api) => api.info('u-1'))).toBe(
      `GET ${odd}drives/u-1/info: expected a drive with "drive" and "size", got a JSON object: "{\\"name\\":\\"boot\\"}"`,
    );
  });

  it('upload-drive fails with that one line, writing nothing', async () => {
    const url = await answering('text/html', '<html>login required</html>');
    const image = await writeImage(Buffer.alloc(4096, 1));
    const error = await rejected(
      DisklessError,
      run(url, { image, 'drive-name': 'boot', 'state-dir': await tmpDir() }),
    );
    expect(error.message).toContain(`GET ${url}drives/info: expected JSON, got HTML`);
  });
});
