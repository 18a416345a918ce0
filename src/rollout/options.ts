/**
 * Inputs of rollout (action.yml and `diskless rollout` flags). `kind` picks the cloud:
 * ElasticStack (api-user, api-key, drive) or Proxmox VE (the connection inputs of
 * upload-pve, reused from its schema, and iso); the rule across inputs asks for the ones
 * the kind needs.
 */
import { inputError, InputError } from '../errors.js';
import { parseHealthCheck } from '../fleet/health.js';
import {
  bool,
  choice,
  filePath,
  httpUrl,
  integer,
  list,
  optional,
  text,
  uuid,
} from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { uploadPveInputs } from '../proxmox/options.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

const pve = uploadPveInputs.fields;
const ELASTIC_DEVICE = /^(ide:[01]:[01]|scsi:0:[0-7]|block:[0-7]|ata:0:[0-5])$/;
const PVE_DEVICE = /^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30))$/;
/** `local:iso/diskless-1a2b3c4d.iso` (upload-pve's volid output) or the file name alone. */
const ISO = /^([a-zA-Z][\w.-]*:iso\/)?[A-Za-z0-9_.-]+\.(iso|img)$/i;

export const rolloutInputs = defineInputs(
  {
    kind: choice(['elasticstack', 'proxmox'], { default: 'elasticstack' }),
    'api-url': httpUrl({ required: true }),
    'api-user': text({ expected: 'the API user (the account UUID)' }),
    'api-key': text({ secret: true, expected: 'the secret API key' }),
    drive: uuid({}),
    'token-id': optional(pve['token-id']),
    'token-secret': optional(pve['token-secret']),
    node: optional(pve.node),
    storage: optional(pve.storage),
    iso: text({
      pattern: ISO,
      expected:
        "the ISO volume to boot, <storage>:iso/<file>.iso (upload-pve's volid output) or the file name",
    }),
    'tls-ca-file': pve['tls-ca-file'],
    'tls-fingerprint': pve['tls-fingerprint'],
    'tls-insecure': pve['tls-insecure'],
    'restart-method': choice(['reset', 'reboot'], { default: 'reset' }),
    servers: list({
      expected:
        'server names, ids (a UUID, or a VMID on proxmox), tag:<tag> or pool:<pool> (proxmox), one per line',
      item: (line) => !/^(tag|pool):\s*$/.test(line),
    }),
    device: text({
      pattern: new RegExp(`${ELASTIC_DEVICE.source}|${PVE_DEVICE.source}`),
      expected:
        'a CD device: ide:0:1 (ide:B:U, scsi:0:N, block:N or ata:0:N) on elasticstack, ide2 (ideN, sataN or scsiN) on proxmox',
    }),
    restart: choice(['rolling', 'none'], { default: 'rolling' }),
    'batch-size': integer({ min: 1, max: 1000, default: '1' }),
    'health-check': text({
      default: 'tcp:22',
      pattern: /^(none|tcp:\d{1,5}|https?:\/\/\S*\{(ip|name)\}\S*)$/,
      expected: 'tcp:<port>, an http(s) URL containing {ip} or {name}, or none',
    }),
    'health-timeout': integer({ min: 1, max: 3600, default: '300' }),
    'dry-run': bool({ default: 'false' }),
    'ledger-name': text({
      pattern: /^[A-Za-z0-9_.-]{1,40}$/,
      expected: 'an upload target name: 1 to 40 of A-Z, a-z, 0-9, _ . -',
    }),
    'rootfs-target': filePath({ absolute: true }),
  },
  (o) => {
    const need = (name: string, value: unknown, expected: string) => {
      if (value === undefined || value === '')
        throw new InputError(
          name,
          `Input "${name}" is required with kind ${o.kind}: expected ${expected}`,
        );
    };
    const notFor = (name: string, value: unknown) => {
      if (value !== undefined && value !== '')
        throw new InputError(
          name,
          `Input "${name}": got a value with kind ${o.kind}; expected it only with kind ${o.kind === 'proxmox' ? 'elasticstack' : 'proxmox'}`,
        );
    };
    if (o.kind === 'elasticstack') {
      need('api-user', o.apiUser, 'the API user (the account UUID)');
      need('api-key', o.apiKey, 'the secret API key');
      need('drive', o.drive, 'the UUID of the drive to boot');
      for (const [name, value] of [
        ['token-id', o.tokenId],
        ['token-secret', o.tokenSecret],
        ['node', o.node],
        ['storage', o.storage],
        ['iso', o.iso],
      ] as const)
        notFor(name, value);
      if (o.device !== undefined && !ELASTIC_DEVICE.test(o.device))
        throw inputError(
          'device',
          o.device,
          'an ElasticStack device such as ide:0:1 (ide:B:U, scsi:0:N, block:N or ata:0:N)',
        );
      const pool = o.servers.find((s) => s.startsWith('pool:'));
      if (pool)
        throw inputError(
          'servers',
          pool,
          'a server name, UUID or tag:<tag> (ElasticStack has no pools)',
        );
    } else {
      need('token-id', o.tokenId, pve['token-id'].expected);
      need('token-secret', o.tokenSecret, pve['token-secret'].expected);
      need('node', o.node, pve.node.expected);
      need('iso', o.iso, "the ISO volume to boot (upload-pve's volid output)");
      for (const [name, value] of [
        ['api-user', o.apiUser],
        ['api-key', o.apiKey],
        ['drive', o.drive],
      ] as const)
        notFor(name, value);
      if (!o.apiUrl.startsWith('https://'))
        throw inputError(
          'api-url',
          o.apiUrl,
          'the https:// URL of a Proxmox VE node (Proxmox serves its API over HTTPS only)',
        );
      const storage = /^([^:]+):/.exec(o.iso ?? '')?.[1];
      if (storage === undefined) need('storage', o.storage, pve.storage.expected);
      else if (o.storage !== undefined && o.storage !== storage)
        throw inputError(
          'storage',
          o.storage,
          `the storage of iso ${JSON.stringify(o.iso)} (${storage})`,
        );
      if (o.device !== undefined && !PVE_DEVICE.test(o.device))
        throw inputError(
          'device',
          o.device,
          'a Proxmox CD drive such as ide2 (ide0-3, sata0-5, scsi0-30)',
        );
    }
    if (!parseHealthCheck(o.healthCheck)) {
      throw inputError(
        'health-check',
        o.healthCheck,
        'tcp:<port> with a port from 1 to 65535, an http(s) URL containing {ip} or {name}, or none',
      );
    }
    if (o.rootfsTarget && !o.ledgerName) {
      throw new InputError(
        'ledger-name',
        'Input "ledger-name" is required with "rootfs-target": expected the upload target name the ledger entry is written under',
      );
    }
  },
  {
    kind: 'The cloud, elasticstack (api-user, api-key, drive) or proxmox (token-id, token-secret, node, iso).',
    'api-url':
      "Base URL of the API: the zone's on ElasticStack, e.g. https://api-lon-p.elastichosts.com/; a node's on Proxmox VE, e.g. https://pve1.example:8006.",
    'api-user': 'ElasticStack API user (the account UUID).',
    'api-key': 'ElasticStack secret API key; masked, and never logged, stored or shown in errors.',
    drive:
      "ElasticStack, the UUID of the drive to boot (upload-drive's drive-uuid output; the previous drive for a rollback).",
    'token-id':
      'Proxmox API token ID, user@realm!tokenid; it needs VM.Audit, VM.Config.CDROM, VM.PowerMgmt and Datastore.Audit.',
    'token-secret':
      "Proxmox, the API token's secret; masked, and never logged, stored or shown in errors.",
    node: 'Proxmox, the node whose storage lists the ISOs (any node, for a shared storage).',
    storage: 'Proxmox, the storage holding the ISOs; by default the one iso names.',
    iso: "Proxmox, the ISO to boot: its volume id <storage>:iso/<file> (upload-pve's volid output; the previous ISO for a rollback), or its file name on storage.",
    'tls-ca-file':
      "Proxmox, PEM file of the CA that signed the node's certificate (e.g. the cluster's pve-root-ca.pem). Give at most one of tls-ca-file, tls-fingerprint, tls-insecure; by default the system CAs.",
    'tls-fingerprint':
      "Proxmox, SHA-256 fingerprint of the node's self-signed certificate, to pin it.",
    'tls-insecure':
      "Proxmox, do not check the node's certificate at all (a lab only; a warning says so).",
    'restart-method':
      'Proxmox, how a VM is restarted: reset (the same QEMU process restarts its guest at once) or reboot (a guest shutdown, then a new start; needs a guest that shuts down).',
    servers:
      "Servers to move, one per line: a name, an id (server UUID, or VMID on Proxmox), tag:<tag> or, on Proxmox, pool:<pool>; each line must match a server. By default every server with a CD device holding a drive or ISO of the new one's family (its name without the trailing -<sha8>).",
    device:
      'The CD device to repoint (e.g. ide:0:1 on ElasticStack, ide2 on Proxmox); by default the one holding one of the family.',
    restart:
      'rolling (reset the servers batch by batch behind the health check) or none (repoint only: servers keep running the old drive and take the new one at their next boot).',
    'batch-size': 'Servers repointed and reset at once, 1 to 1000.',
    'health-check':
      "When a reset server counts as healthy: tcp:<port> (the port accepts a connection), an http(s) URL with {ip} for the server's address or {name} for its name (answers below 400), or none (it runs). On Proxmox the address is the guest agent's.",
    'health-timeout': 'Seconds a reset server has to run and pass the health check, 1 to 3600.',
    'dry-run': 'Only report which servers would be repointed and reset; nothing is changed.',
    'ledger-name':
      'Upload target name for the releases ledger entry (the ledger output, and the file written with rootfs-target); without it no entry is made.',
    'rootfs-target':
      'Base directory of the client roots on the master: write the ledger entry to <rootfs-target>/ledger/<ledger-name>.json, which retention reads. Only where the rollout runs on the master; the workflow writes it from the ledger output instead.',
  },
);

export type RolloutOptions = Options<typeof rolloutInputs.fields>;

/** The artifact the rollout boots: the drive UUID, or the ISO's full volume id. */
export function targetArtifact(o: RolloutOptions): string {
  if (o.kind === 'elasticstack') return o.drive ?? '';
  const iso = o.iso ?? '';
  return iso.includes(':') ? iso : `${o.storage ?? ''}:iso/${iso}`;
}

/** The storage whose ISOs are the Proxmox artifacts. */
export function isoStorage(o: RolloutOptions): string {
  return /^([^:]+):/.exec(o.iso ?? '')?.[1] ?? o.storage ?? '';
}

/** What rollout hands on (action.yml's outputs say the same; a test checks). */
export const rolloutOutputs = defineOutputs({
  'servers-updated': {
    type: 'string',
    description: 'Names of the servers whose CD device now names the drive, space-separated.',
  },
  'servers-restarted': {
    type: 'string',
    description: 'Names of the servers reset by this run, space-separated (a failed one included).',
  },
  'previous-drive': {
    type: 'string',
    description:
      'The drive UUID (ElasticStack) or ISO volume id (Proxmox) the servers booted before (roll back by a rollout to it); empty when none.',
  },
  'failed-server': {
    type: 'string',
    description:
      'Name of the server whose restart or health check failed (it was put back); empty on success.',
  },
  release: {
    type: 'string',
    description:
      'Release the drive boots, from its record (user:diskless-release); empty when unknown.',
  },
  ledger: {
    type: 'string',
    description:
      "The ledger entry as JSON (target, release, sha256, drive, time, also: the other releases servers still run or boot, and the previous drive's); empty without ledger-name or a release.",
  },
  fleet: {
    type: 'string',
    description:
      'JSON object of server name to what it runs: its release and drive, and the one it boots next when that differs (the servers chosen; also after a failure).',
  },
  'dry-run': { type: 'boolean', description: 'true when nothing was changed (dry run).' },
});

export type RolloutReport = ReportOf<typeof rolloutOutputs>;
