/** Inputs of upload-pve (action.yml and `diskless upload-pve` flags). */
import { bool, filePath, integer, text } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { TOKEN_ID } from './api.js';
import { FAMILY } from './upload.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

export const uploadPveInputs = defineInputs(
  {
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
  },
  undefined,
  {
    image: 'The image (ISO) to upload.',
    'api-url': 'The https:// URL of a Proxmox VE node, e.g. https://pve1.example:8006.',
    'token-id':
      'API token ID, user@realm!tokenid; it needs Datastore.AllocateTemplate on the storage (and Datastore.Allocate to prune).',
    'token-secret': "The API token's secret; masked, and never logged, stored or shown in errors.",
    node: 'The node that receives the upload (with a shared storage, every node then sees the file).',
    storage: 'ID of a storage with iso content, e.g. local or cephfs.',
    family: 'Name of the image family; files are named <family>-<sha8>.iso.',
    'tls-ca-file':
      "PEM file of the CA that signed the node's certificate (e.g. the cluster's pve-root-ca.pem). Give at most one of tls-ca-file, tls-fingerprint, tls-insecure; by default the system CAs.",
    'tls-fingerprint': "SHA-256 fingerprint of the node's self-signed certificate, to pin it.",
    'tls-insecure': "Do not check the node's certificate at all (a lab only; a warning says so).",
    prune:
      "Delete the family's old files that no VM config references (current or pending), keeping keep-previous of them for a rollback.",
    'keep-previous': 'Old files of the family kept by prune besides those in use, newest first.',
    'dry-run': 'Only report whether the file would be uploaded and what prune would delete.',
  },
);

export type UploadPveOptions = Options<typeof uploadPveInputs.fields>;

/** What upload-pve hands on (action.yml's outputs say the same; a test checks). */
export const uploadPveOutputs = defineOutputs({
  volid: {
    type: 'string',
    description:
      "Volume ID of the artifact, <storage>:iso/<family>-<sha8>.iso, what a VM's CD points at.",
  },
  filename: { type: 'string', description: 'File name of the artifact on the storage.' },
  sha256: { type: 'string', description: 'SHA-256 of the image, hex.' },
  sent: {
    type: 'boolean',
    description:
      'true when this run sent the image (false when it was already there, or a dry run).',
  },
  attempts: {
    type: 'number',
    description:
      'Upload requests made (more than 1 after a network failure; 0 when nothing was sent).',
  },
  deleted: { type: 'string', description: 'Volume IDs deleted by prune, space-separated.' },
  'send-seconds': {
    type: 'string',
    description: "Seconds spent sending the image and waiting for Proxmox's check.",
  },
  throughput: {
    type: 'string',
    description: "MB/s of the upload including Proxmox's check ('-' when nothing was sent).",
  },
});

export type UploadPveReport = ReportOf<typeof uploadPveOutputs>;
