/**
 * The project's own content rules: private key material in the forms a token scanner
 * does not know. Binary key files are recognised by their structure at the start of the
 * file (dropbear, PKCS#12, Java keystores) or by the OpenSSH magic anywhere; PEM keys in
 * ASCII, UTF-16 or base64 (Kubernetes-style YAML); JSON web keys with a private member;
 * WireGuard `PrivateKey =` lines; password lines of known credential files.
 *
 * A key marker alone is not a hit: programs and libraries (ssh-keygen, libcrypto) carry
 * "-----BEGIN PRIVATE KEY-----" and "openssh-key-v1" as string constants, so a PEM needs
 * its base64 body and the OpenSSH magic its cipher name after it.
 */

/** A PEM private key: the BEGIN line, optional headers (encrypted PEM), then base64. */
const PEM_KEY =
  /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----\r?\n(?:[A-Za-z-]+:[^\n]*\r?\n)*(?:\r?\n)?[A-Za-z0-9+/=]{32,}/;
const PUTTY_KEY = /PuTTY-User-Key-File-\d+: [a-z0-9-]+\r?\nEncryption: /;
/** OpenSSH's binary private key: the magic, then the length and name of its cipher. */
// eslint-disable-next-line no-control-regex -- binary structure: NULs and a length byte
const OPENSSH_BINARY = /openssh-key-v1\x00\x00\x00\x00[\x04-\x20](?:none|aes|chacha|3des)/;
const JWK_TYPE = /"kty"\s*:\s*"(?:RSA|EC|OKP|oct)"/;
const JWK_PRIVATE = /"(?:d|k|p|q|dp|dq|qi)"\s*:\s*"[A-Za-z0-9_-]{16,}/;
const WIREGUARD_KEY = /^[ \t]*(?:PrivateKey|PresharedKey)[ \t]*=[ \t]*[A-Za-z0-9+/]{42,43}=/m;
/** base64 of "-----BEGIN" at the three alignments a PEM can have inside a base64 string. */
const BASE64_PEM = /(?:LS0tLS1CRUdJT|0tLS0tQkVHSU|tLS0tLUJFR0lO)[A-Za-z0-9+/=\s]{40,}/g;
const BASE64_CHAR = /[A-Za-z0-9+/]/;
const UTF16_BEGIN = {
  le: Buffer.from('-----BEGIN', 'utf16le'),
  be: Buffer.from('-----BEGIN', 'utf16le').swap16(),
};

/** Credential files known by name whose password lines are secrets. */
const PASSWORD_FILES: readonly { path: RegExp; line: RegExp }[] = [
  // MySQL/MariaDB option files (debian.cnf, .my.cnf, conf.d/*.cnf).
  { path: /\.cnf$/, line: /^[ \t]*password[ \t]*=[ \t]*["']?[^\s"'#;]/im },
  // netrc and apt's auth.conf: "machine host login user password secret".
  { path: /(?:^|\/)(?:\.netrc|auth\.conf(?:\.d\/[^/]+)?)$/, line: /\bpassword[ \t]+\S/i },
  // PPP, IPsec and rsyncd secrets, davfs2: every non-comment line is a credential.
  { path: /(?:-secrets|\.secrets|davfs2\/secrets)$/, line: /^[ \t]*[^#\s]/m },
  // fetchmail, msmtp, ddclient, wpa_supplicant.
  {
    path: /(?:^|\/)\.?(?:fetchmailrc|msmtprc|ddclient\.conf|wpa_supplicant[^/]*\.conf)$/,
    line: /^[ \t]*(?:password|passwd|psk)[ \t]*[= \t][ \t]*["']?[^\s"'#]/im,
  },
];

const DROPBEAR_TYPES = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);

/** Rules decided by the structure of a file's first bytes (`size`: the whole file's). */
export function structureRule(head: Buffer, size: number): string | undefined {
  if (head.length >= 12) {
    // dropbear's own format: a length-prefixed key type name, then the key's numbers.
    const nameLength = head.readUInt32BE(0);
    if (nameLength >= 7 && nameLength <= 19 && size < 65536 && head.length >= 4 + nameLength) {
      const name = head.toString('latin1', 4, 4 + nameLength);
      if (DROPBEAR_TYPES.has(name)) return 'dropbear-private-key';
    }
    const magic = head.readUInt32BE(0);
    if (magic === 0xfeedfeed || magic === 0xcececece) {
      return javaKeystoreHasPrivateEntry(head) ? 'java-keystore-private-key' : undefined;
    }
  }
  if (isPkcs12(head)) return 'pkcs12-keystore';
  return undefined;
}

/**
 * PKCS#12 (RFC 7292): SEQUENCE { INTEGER 3, SEQUENCE { OID pkcs7-data, ... } ... } in DER
 * or BER (indefinite length).
 */
function isPkcs12(head: Buffer): boolean {
  if (head.length < 20 || head[0] !== 0x30) return false;
  const lengthByte = head[1] ?? 0;
  let at = 2;
  if (lengthByte & 0x80) at += lengthByte & 0x7f; // long or indefinite (0x80) length
  if (head[at] !== 0x02 || head[at + 1] !== 0x01 || head[at + 2] !== 0x03) return false;
  const rest = head.subarray(at + 3, at + 24);
  return rest.includes(Buffer.from('06092a864886f70d010701', 'hex'));
}

/**
 * A JKS/JCEKS keystore holds a private (tag 1) or secret (tag 3) key, not only trusted
 * certificates (tag 2, like Java's cacerts). One it cannot walk counts as holding one.
 */
function javaKeystoreHasPrivateEntry(data: Buffer): boolean {
  try {
    const version = data.readUInt32BE(4);
    const count = data.readUInt32BE(8);
    let at = 12;
    const utf = () => {
      const n = data.readUInt16BE(at);
      at += 2 + n;
    };
    for (let i = 0; i < count; i++) {
      const tag = data.readUInt32BE(at);
      at += 4;
      if (tag !== 2) return true;
      utf(); // alias
      at += 8; // date
      if (version === 2) utf(); // certificate type
      at += 4 + data.readUInt32BE(at);
    }
    return false;
  } catch {
    return true; // ran past what was read: treated as a key store with keys
  }
}

/** The rules that match anywhere in a window (`text`: it as latin1) of the file at `rel`. */
export function windowRules(data: Buffer, text: string, rel: string): string[] {
  const hits: string[] = [];
  // Cheap substring checks first: most windows hold none of the markers.
  if (text.includes('PRIVATE KEY') && PEM_KEY.test(text)) hits.push('pem-private-key');
  if (text.includes('PuTTY-User-Key-File') && PUTTY_KEY.test(text)) hits.push('putty-private-key');
  if (text.includes('openssh-key-v1') && OPENSSH_BINARY.test(text)) {
    hits.push('openssh-private-key');
  }
  if (text.includes('"kty"') && JWK_TYPE.test(text) && JWK_PRIVATE.test(text)) {
    hits.push('json-web-key-private');
  }
  if (/Pr(?:ivate|eshared)Key/.test(text) && WIREGUARD_KEY.test(text)) {
    hits.push('wireguard-private-key');
  }
  if (utf16Pem(data)) hits.push('pem-private-key-utf16');
  if (base64Pem(text)) hits.push('pem-private-key-base64');
  for (const file of PASSWORD_FILES) {
    if (file.path.test(rel) && file.line.test(text)) {
      hits.push('credential-file-password');
      break;
    }
  }
  return hits;
}

function utf16Pem(data: Buffer): boolean {
  for (const [order, marker] of Object.entries(UTF16_BEGIN)) {
    let at = data.indexOf(marker);
    while (at >= 0) {
      const piece = Buffer.from(data.subarray(at, at + 8192));
      const even = piece.subarray(0, piece.length - (piece.length % 2));
      if (order === 'be') even.swap16();
      if (PEM_KEY.test(even.toString('utf16le'))) return true;
      at = data.indexOf(marker, at + 2);
    }
  }
  return false;
}

function base64Pem(text: string): boolean {
  for (const match of text.matchAll(BASE64_PEM)) {
    // Back to the start of the base64 run (a string or line start is 4-aligned).
    let start = match.index;
    while (start > 0 && start > match.index - 65536 && BASE64_CHAR.test(text[start - 1] ?? '')) {
      start--;
    }
    const clean = text.slice(start, match.index + 8192).replace(/\s+/g, '');
    if (PEM_KEY.test(Buffer.from(clean, 'base64').toString('latin1'))) return true;
  }
  return false;
}
