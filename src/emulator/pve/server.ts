/**
 * The Proxmox VE emulator's HTTPS server (node:https, a certificate made at start): opens
 * the emulator's state (state.ts), answers each request with handle.ts and closes in order
 * (the HTTPS server and its requests in flight, the tasks, the VMs, then the upload
 * directory).
 */
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { closeHttpServer } from '../serve.js';
import { handle } from './handle.js';
import type { PveEmulator, PveEmulatorOptions } from './options.js';
import { openPveState } from './state.js';
import { makeSelfSigned } from './tls.js';

export async function startPveEmulator(options: PveEmulatorOptions): Promise<PveEmulator> {
  const state = await openPveState(options);
  const tls = await makeSelfSigned(state.host);
  const inflight = new Set<Promise<void>>();
  const server: Server = createServer(
    { cert: tls.cert, key: tls.key, requestTimeout: 0 },
    (req, res) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      const done = handle(state, req, res).catch(() => {
        res.destroy();
      });
      inflight.add(done);
      void done.finally(() => inflight.delete(done));
    },
  );
  server.listen(options.port ?? 0, state.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]: unknown[]) => {
      throw error;
    }),
  ]);
  const address = server.address() as AddressInfo;
  const hostPort = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    url: `https://${hostPort}/api2/json`,
    hostPort,
    certificate: tls.cert,
    fingerprint: tls.fingerprint,
    stats: state.stats,
    editConfig(vmid, changes) {
      state.vms.edit(vmid, changes);
    },
    close() {
      closing ??= (async () => {
        await closeHttpServer(server, inflight);
        await state.tasks.settle();
        await state.vms.close();
        await rm(state.tmpDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
