/**
 * The certificate the emulator serves: Proxmox speaks HTTPS only (and proxmoxer too),
 * with a self-signed certificate per node. One is made at start with openssl (a real
 * tool, in the CI's Debian packages), valid for 127.0.0.1, ::1 and localhost.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../../process/run.js';

export interface SelfSigned {
  cert: string;
  key: string;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex. */
  fingerprint: string;
}

/** SHA-256 fingerprint of a PEM certificate, as Proxmox and openssl show it. */
export function certificateFingerprint(pem: string): string {
  const der = new X509Certificate(pem).raw;
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return hex.replace(/(..)(?!$)/g, '$1:');
}

export async function makeSelfSigned(host: string): Promise<SelfSigned> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pve-emulator-tls-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    const names = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost']);
    names.add(/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`);
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '7',
        '-subj',
        '/CN=pve-emulator',
        '-addext',
        `subjectAltName=${[...names].join(',')}`,
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { debianPackage: 'openssl' },
    );
    const cert = await readFile(certFile, 'utf8');
    return {
      cert,
      key: await readFile(keyFile, 'utf8'),
      fingerprint: certificateFingerprint(cert),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
