/** Inputs of upload-pve (action.yml and `diskless upload-pve` flags). */
import { bool, filePath, integer, text } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { TOKEN_ID } from './api.js';
import { FAMILY } from './upload.js';

export const uploadPveInputs = defineInputs({
  image: filePath({ required: true }),
  'api-url': text({
    required: true,
    pattern: /^https:\/\/[^\s/@]+(\/\S*)?$/,
    expected: 'the https:// URL of a Proxmox VE node, e.g. https://pve1.example:8006',
  }),
  'token-id': text({
    required: true,
    pattern: TOKEN_ID,
    expected: 'an API token ID user@realm!tokenid, e.g. ci@pve!diskless',
  }),
  'token-secret': text({ required: true, secret: true, expected: "the API token's secret" }),
  node: text({
    required: true,
    pattern: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/,
    expected: 'the name of the node that receives the upload, e.g. pve1',
  }),
  storage: text({
    required: true,
    pattern: /^[a-zA-Z][\w.-]*$/,
    expected: 'the ID of a storage with iso content, e.g. local or cephfs',
  }),
  family: text({
    default: 'diskless',
    pattern: FAMILY,
    expected: 'letters, digits, ".", "_" or "-" (the ISO is named <family>-<sha8>.iso)',
  }),
  'tls-ca-file': filePath({}),
  'tls-fingerprint': text({
    pattern: /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$/,
    expected: "the SHA-256 fingerprint of the node's certificate, 64 hex digits (colons allowed)",
  }),
  'tls-insecure': bool({ default: 'false' }),
  prune: bool({ default: 'false' }),
  'keep-previous': integer({ min: 0, max: 100, default: '1' }),
  'dry-run': bool({ default: 'false' }),
});

export type UploadPveOptions = Options<typeof uploadPveInputs.fields>;
