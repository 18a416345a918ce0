/**
 * The emulator's HTTP server (node:http, no framework): opens the emulator's state
 * (state.ts), answers each request with handle.ts and closes in order (the HTTP server and
 * its requests in flight, then the servers, imaging and the drive store).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handle } from './handle.js';
import type { Emulator, EmulatorOptions, Faults } from './options.js';
import { closeHttpServer } from './serve.js';
import { openState } from './state.js';

export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const state = await openState(options);
  const inflight = new Set<Promise<void>>();
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    req.on('error', () => undefined); // resets surface through the body reader
    res.on('error', () => undefined);
    const done = handle(state, req, res).catch(() => {
      res.destroy();
    });
    inflight.add(done);
    void done.finally(() => inflight.delete(done));
  });
  server.on('connection', () => {
    state.stats.connections += 1;
  });

  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]: unknown[]) => {
      throw error;
    }),
  ]);
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/`,
    stats: state.stats,
    setFaults(faults: Faults) {
      state.picker.set(faults);
    },
    close() {
      closing ??= (async () => {
        await closeHttpServer(server, inflight);
        await state.servers.close();
        await state.imaging.close();
        await state.store.flush();
      })();
      return closing;
    },
  };
}
