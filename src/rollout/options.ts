/** Inputs of rollout (action.yml and `diskless rollout` flags). */
import { InputError } from '../errors.js';
import { parseHealthCheck } from '../fleet/health.js';
import { bool, choice, filePath, httpUrl, integer, list, text, uuid } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';

export const rolloutInputs = defineInputs(
  {
    'api-url': httpUrl({ required: true }),
    'api-user': text({ required: true, expected: 'the API user (the account UUID)' }),
    'api-key': text({ required: true, secret: true, expected: 'the secret API key' }),
    drive: uuid({ required: true }),
    servers: list({
      expected: 'server names, server UUIDs or tag:<tag>, one per line',
      item: (line) => !/^tag:\s*$/.test(line),
    }),
    device: text({
      pattern: /^(ide:[01]:[01]|scsi:0:[0-7]|block:[0-7]|ata:0:[0-5])$/,
      expected: 'a device id such as ide:0:1 (ide:B:U, scsi:0:N, block:N or ata:0:N)',
    }),
    restart: choice(['rolling', 'none'], { default: 'rolling' }),
    'batch-size': integer({ min: 1, max: 1000, default: '1' }),
    'health-check': text({
      default: 'tcp:22',
      pattern: /^(none|tcp:\d{1,5}|https?:\/\/\S*\{ip\}\S*)$/,
      expected: 'tcp:<port>, an http(s) URL containing {ip}, or none',
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
    if (!parseHealthCheck(o.healthCheck)) {
      throw new InputError(
        'health-check',
        `Input "health-check": got ${JSON.stringify(o.healthCheck)}; expected tcp:<port> with a port from 1 to 65535, an http(s) URL containing {ip}, or none`,
      );
    }
    if (o.rootfsTarget && !o.ledgerName) {
      throw new InputError(
        'ledger-name',
        'Input "ledger-name" is required with "rootfs-target": expected the upload target name the ledger entry is written under',
      );
    }
  },
);

export type RolloutOptions = Options<typeof rolloutInputs.fields>;
