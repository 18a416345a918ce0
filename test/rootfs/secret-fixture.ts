/**
 * Plants a master's secrets in every form issue 14 lists, made at test time by the real
 * tools (ssh-keygen, openssl, dropbearkey): the known key stores that the copy must leave
 * out, and keys and tokens elsewhere that only the content scan can find.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '../helpers/temp.js';

export interface PlantedSecrets {
  /** Known key stores: never copied into a client root. */
  stores: string[];
  /** Path (as a client sees it) -> the rule that must name it. */
  found: Record<string, string>;
  /** Every planted file's contents, to check that nothing printed quotes them. */
  contents: string[];
}

function tool(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomText(length: number, alphabet = ALNUM): string {
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** A JKS keystore (version 2) holding one private key entry with its certificate. */
function javaKeystore(keyDer: Buffer, certDer: Buffer): Buffer {
  const utf = (s: string) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(s.length);
    return Buffer.concat([b, Buffer.from(s)]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([
    u32(0xfeedfeed),
    u32(2),
    u32(1),
    u32(1), // PrivateKeyEntry
    utf('server'),
    Buffer.alloc(8),
    u32(keyDer.length),
    keyDer,
    u32(1),
    utf('X.509'),
    u32(certDer.length),
    certDer,
    randomBytes(20), // the keystore's digest
  ]);
}

/** Plants every form into the master root `master`. */
export async function plantSecrets(master: string): Promise<PlantedSecrets> {
  const work = await tempDir('keys');
  const out: PlantedSecrets = { stores: [], found: {}, contents: [] };
  const put = async (rel: string, data: string | Buffer) => {
    const file = path.join(master, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data, { mode: 0o600 });
    out.contents.push(Buffer.from(data).toString('latin1'));
  };
  const store = async (rel: string, data: string | Buffer) => {
    await put(rel, data);
    out.stores.push(rel);
  };
  const found = async (rel: string, rule: string, data: string | Buffer) => {
    await put(rel, data);
    out.found[`/${rel}`] = rule;
  };

  const rsaPem = path.join(work, 'rsa.pem');
  tool('openssl', [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    rsaPem,
  ]);
  const certPem = path.join(work, 'cert.pem');
  tool('openssl', [
    'req',
    '-x509',
    '-key',
    rsaPem,
    '-subj',
    '/CN=master',
    '-days',
    '2',
    '-out',
    certPem,
  ]);
  const p12 = path.join(work, 'store.p12');
  tool('openssl', [
    'pkcs12',
    '-export',
    '-inkey',
    rsaPem,
    '-in',
    certPem,
    '-passout',
    'pass:x',
    '-out',
    p12,
  ]);
  const key = await readFile(rsaPem, 'utf8');
  const cert = await readFile(certPem, 'utf8');
  const keyDer = tool('openssl', ['pkey', '-in', rsaPem, '-outform', 'DER']);
  const certDer = tool('openssl', ['x509', '-in', certPem, '-outform', 'DER']);
  const ssh = path.join(work, 'id_ed25519');
  tool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ssh]);
  const sshPem = await readFile(ssh, 'utf8');
  const sshBinary = Buffer.from(
    sshPem
      .split('\n')
      .filter((l) => !l.startsWith('-----'))
      .join(''),
    'base64',
  );
  const dropbear = (type: string) => {
    const file = path.join(work, `dropbear_${type}`);
    tool('dropbearkey', ['-t', type, '-f', file]);
    return readFile(file);
  };
  const wgKey = () =>
    tool('openssl', ['genpkey', '-algorithm', 'X25519', '-outform', 'DER'])
      .subarray(-32)
      .toString('base64');
  const jwk = () => {
    const pem = path.join(work, `ec-${randomText(6)}.pem`);
    tool('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      pem,
    ]);
    const der = tool('openssl', ['pkey', '-in', pem, '-outform', 'DER']);
    // The private scalar of a P-256 PKCS#8 key: the 32 bytes after 04 20 in its ECPrivateKey.
    const at = der.indexOf(Buffer.from([0x04, 0x20]));
    const d = der.subarray(at + 2, at + 34).toString('base64url');
    return JSON.stringify({ kty: 'EC', crv: 'P-256', d, x: randomText(43), y: randomText(43) });
  };

  // Known key stores (every one would pass the content scan's eye only by luck).
  await store('etc/dropbear/dropbear_ed25519_host_key', await dropbear('ed25519'));
  await store('etc/dropbear/initramfs/dropbear_rsa_host_key', await dropbear('rsa'));
  await store(
    'etc/wireguard/wg0.conf',
    `[Interface]\nPrivateKey = ${wgKey()}\nListenPort = 51820\n`,
  );
  await store(
    'etc/letsencrypt/accounts/acme-v02.api.letsencrypt.org/directory/0a1b/private_key.json',
    jwk(),
  );
  await store('etc/letsencrypt/archive/example.com/privkey1.pem', key);
  await store(
    'etc/apt/auth.conf.d/vendor.conf',
    `machine apt.example.com login ci password ${randomText(20)}\n`,
  );
  await store(
    'etc/mysql/debian.cnf',
    `[client]\nuser = debian-sys-maint\npassword = ${randomText(16)}\n`,
  );
  await store('etc/ipsec.secrets', `: PSK "${randomText(24)}"\n`);
  await store('etc/ppp/chap-secrets', `office * ${randomText(12)} *\n`);
  await store('etc/munge/munge.key', randomBytes(1024));

  // Elsewhere: only the content scan can tell.
  const filler = cert.repeat(Math.ceil((300 * 1024) / cert.length));
  await found('etc/ssl/certs/bundle-with-key.pem', 'pem-private-key', `${filler}${key}`);
  await found(
    'srv/app/tls-utf16.pem',
    'pem-private-key-utf16',
    Buffer.from(`\ufeff${key}`, 'utf16le'),
  );
  await found(
    'srv/app/k8s-secret.yaml',
    'pem-private-key-base64',
    `apiVersion: v1\nkind: Secret\ndata:\n  tls.key: ${Buffer.from(key).toString('base64')}\n`,
  );
  await found('srv/app/keystore.p12', 'pkcs12-keystore', await readFile(p12));
  await found('srv/app/keystore.jks', 'java-keystore-private-key', javaKeystore(keyDer, certDer));
  await found('srv/app/host.dropbear', 'dropbear-private-key', await dropbear('ecdsa'));
  await found('srv/app/deploy-key.bin', 'openssh-private-key', sshBinary);
  await found('srv/app/wg-backup.conf', 'wireguard-private-key', `PrivateKey = ${wgKey()}\n`);
  await found('srv/app/account.json', 'json-web-key-private', jwk());
  await found(
    'srv/app/backup.cnf',
    'credential-file-password',
    `[client]\npassword = ${randomText(14)}\n`,
  );
  await found('etc/environment', 'secretlint/github', `GITHUB_TOKEN=ghp_${randomText(36)}\n`);
  await found(
    'etc/default/app',
    'secretlint/aws',
    `AWS_ACCESS_KEY_ID=AKIA${randomText(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}\nAWS_SECRET_ACCESS_KEY=${randomText(40)}\n`,
  );
  return out;
}

/** Runs of 16 or more key or token characters in `text` (what a leak would show). */
export function secretRuns(contents: readonly string[]): string[] {
  return contents.flatMap((c) => c.match(/[A-Za-z0-9+/_=-]{24,}/g) ?? []);
}
