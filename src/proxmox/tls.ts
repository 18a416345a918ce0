/**
 * How the client trusts the Proxmox server: the system CAs by default; a CA file for a
 * cluster with its own CA (Proxmox's pve-root-ca.pem); a pinned SHA-256 fingerprint for
 * a node's self-signed certificate; or certificate checks off, only when asked for by
 * name. Never silently insecure.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { InputError } from '../errors.js';

export interface PveTls {
  /** PEM file of the CA (or of the certificate itself) to trust. */
  caFile?: string | undefined;
  /** SHA-256 fingerprint of the server's certificate, hex with or without colons. */
  fingerprint?: string | undefined;
  /** Skip certificate checks (a lab only): must be asked for explicitly. */
  insecure?: boolean | undefined;
}

/** A fingerprint as Node shows it: upper-case hex pairs joined by colons. */
export function normalizeFingerprint(value: string): string {
  const hex = value.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new InputError(
      'tls-fingerprint',
      `Invalid tls-fingerprint ${JSON.stringify(value)}: expected the SHA-256 fingerprint of the server's certificate, 64 hex digits (colons allowed)`,
    );
  }
  return hex.replace(/(..)(?!$)/g, '$1:');
}

export function pveDispatcher(tls: PveTls, options: Agent.Options): Agent {
  const chosen = [tls.caFile, tls.fingerprint, tls.insecure ? 'insecure' : undefined].filter(
    (x) => x !== undefined && x !== '',
  );
  if (chosen.length > 1) {
    throw new InputError(
      'tls-ca-file',
      'Inputs "tls-ca-file", "tls-fingerprint" and "tls-insecure": got more than one; expected at most one way to trust the server',
    );
  }
  if (tls.caFile) {
    let ca: string;
    try {
      ca = readFileSync(tls.caFile, 'utf8');
    } catch (error) {
      throw new InputError(
        'tls-ca-file',
        `Invalid tls-ca-file ${JSON.stringify(tls.caFile)}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}; expected a readable PEM file`,
      );
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new InputError(
        'tls-ca-file',
        `Invalid tls-ca-file ${JSON.stringify(tls.caFile)}: no PEM certificate in it; expected a PEM file`,
      );
    }
    return new Agent({ ...options, connect: { ca } });
  }
  if (tls.fingerprint) {
    const pinned = normalizeFingerprint(tls.fingerprint);
    // No session resumption: a resumed session shows no certificate to check.
    const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
    return new Agent({
      ...options,
      connect: (opts, callback) => {
        base(opts, (error, socket) => {
          if (error) {
            callback(error, null);
            return;
          }
          const got = (socket as TLSSocket).getPeerCertificate().fingerprint256;
          if (got !== pinned) {
            socket.destroy();
            callback(
              new Error(
                `the server's certificate has the fingerprint ${got}, not the pinned ${pinned}`,
              ),
              null,
            );
            return;
          }
          callback(null, socket);
        });
      },
    });
  }
  if (tls.insecure) return new Agent({ ...options, connect: { rejectUnauthorized: false } });
  return new Agent(options);
}
