/**
 * What a server is, and the checks on the keys a client may send to servers/create and
 * servers/UUID/set (elastichosts-api.md section 5). As for drives, unknown or read-only
 * keys are refused (400 usage) rather than ignored. A server's keys are kept as the
 * client sent them (lists space-separated); set replaces the keys it names, keeps the
 * others and removes those it sends empty.
 */
import { UUID_PATTERN } from '../inputs/fields.js';
import { EmulatorApiError } from './api-error.js';
import type { Fields, Info, InfoValue } from './wire-format.js';

/** A server's configuration: API keys and their values as text. */
export type ServerConfig = Record<string, string>;

/** A server as stored in servers/<uuid>.json. */
export interface ServerMeta {
  server: string;
  user: string;
  config: ServerConfig;
}

/** A server while it runs: what it was started with (later sets wait for a reset). */
export interface ServerRun {
  /** Unix seconds of the last start or reset. */
  started: number;
  /** The configuration it was started (or last reset) with. */
  config: ServerConfig;
  /** The address its first NIC has. */
  ip: string;
}

/** Device ids: IDE bus 0-1 unit 0-1, SCSI 0:0-7, virtio block 0-7, SATA 0:0-5. */
export const DEVICE_PATTERN = /^(ide:[01]:[01]|scsi:0:[0-7]|block:[0-7]|ata:0:[0-5])$/;
const MEDIA_PATTERN = /^(ide:[01]:[01]|scsi:0:[0-7]|block:[0-7]|ata:0:[0-5]):media$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LISTS = new Set(['boot', 'tags', 'avoid:drives', 'avoid:servers']);
const NUMBERS = new Set(['cpu', 'mem']);

type Check = (key: string, value: string) => string;

function wholeNumber(min: number, max: number, unit: string): Check {
  return (key, value) => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) {
      throw new EmulatorApiError(
        'usage',
        `Invalid ${key} ${JSON.stringify(value)}: expected ${min} to ${max} ${unit}`,
      );
    }
    return String(n);
  };
}

function choice(...choices: string[]): Check {
  return (key, value) => {
    if (!choices.includes(value)) {
      throw new EmulatorApiError(
        'usage',
        `Invalid ${key} ${JSON.stringify(value)}: expected ${choices.join(' or ')}`,
      );
    }
    return value;
  };
}

const anyText: Check = (_key, value) => value;

const CHECKS: Record<string, Check> = {
  name: anyText,
  cpu: wholeNumber(100, 100_000, 'MHz'),
  smp: (key, value) => (value === 'auto' ? value : wholeNumber(1, 64, 'cores or auto')(key, value)),
  mem: wholeNumber(16, 1_048_576, 'MB'),
  persistent: choice('true', 'false'),
  boot: (key, value) => {
    const bad = value.split(' ').find((d) => !DEVICE_PATTERN.test(d));
    if (bad !== undefined) {
      throw new EmulatorApiError(
        'usage',
        `Invalid ${key} ${JSON.stringify(bad)}: expected device ids such as ide:0:0 or block:0`,
      );
    }
    return value;
  },
  'nic:0:model': choice('e1000', 'rtl8139', 'virtio'),
  'nic:0:dhcp': (key, value) => (value === 'auto' ? value : ipv4(key, value)),
  'nic:1:model': choice('e1000', 'rtl8139', 'virtio'),
  'nic:1:vlan': anyText,
  'nic:1:mac': anyText,
  vnc: (key, value) => (value === 'auto' ? value : ipv4(key, value)),
  'vnc:ip': (key, value) => (value === 'auto' ? value : ipv4(key, value)),
  'vnc:password': anyText,
  password: anyText,
  'vnc:tls': choice('on', 'off'),
  tags: anyText,
  'avoid:drives': anyText,
  'avoid:servers': anyText,
};

function ipv4(key: string, value: string): string {
  if (!IPV4.test(value)) {
    throw new EmulatorApiError(
      'usage',
      `Invalid ${key} ${JSON.stringify(value)}: expected auto or an IPv4 address`,
    );
  }
  return value;
}

function checkOf(key: string): Check | undefined {
  if (DEVICE_PATTERN.test(key)) {
    return (k, value) => {
      if (!UUID_PATTERN.test(value)) {
        throw new EmulatorApiError(
          'usage',
          `Invalid ${k} ${JSON.stringify(value)}: expected a drive UUID`,
        );
      }
      return value.toLowerCase();
    };
  }
  if (MEDIA_PATTERN.test(key)) return choice('disk', 'cdrom');
  if (key.startsWith('user:') && key.length > 5) return anyText;
  return CHECKS[key];
}

/**
 * The keys a create or set body asks for, checked one by one; an empty value stands for
 * "remove" (set) or "not given" (create). Lists arrive as JSON arrays or space-separated.
 */
export function parseServerChanges(fields: Fields, mode: 'create' | 'set'): ServerConfig {
  const changes: ServerConfig = {};
  for (const [key, raw] of fields) {
    const check = checkOf(key);
    if (!check) {
      throw new EmulatorApiError(
        'usage',
        `Unknown or read-only field ${JSON.stringify(key)} for servers/${mode}`,
      );
    }
    if (Array.isArray(raw) && !LISTS.has(key)) {
      throw new EmulatorApiError('usage', `Field ${key} takes one value, not a list`);
    }
    const value = (Array.isArray(raw) ? raw.join(' ') : raw).trim().replace(/\s+/g, ' ');
    if (value === '') {
      if (key === 'name') throw new EmulatorApiError('usage', 'Field name must not be empty');
      if (mode === 'set') changes[key] = '';
      continue;
    }
    changes[key] = check(key, value);
  }
  return changes;
}

/** A configuration after `changes`: named keys replaced, empty ones removed. */
export function applyServerChanges(config: ServerConfig, changes: ServerConfig): ServerConfig {
  return Object.fromEntries(
    Object.entries({ ...config, ...changes }).filter(([, value]) => value !== ''),
  );
}

/** Checks a whole configuration: the required keys, and boot devices that are attached. */
export function checkServerConfig(config: ServerConfig): void {
  for (const key of ['name', 'cpu', 'mem']) {
    if (config[key] === undefined) throw new EmulatorApiError('usage', `Field ${key} is required`);
  }
  for (const device of (config.boot ?? '').split(' ').filter((d) => d !== '')) {
    if (config[device] === undefined) {
      throw new EmulatorApiError(
        'usage',
        `Invalid boot ${JSON.stringify(device)}: no drive is attached at ${device}`,
      );
    }
  }
}

/** The attached drives: device id -> drive UUID and media. */
export function serverDevices(
  config: ServerConfig,
): { device: string; drive: string; media: 'disk' | 'cdrom' }[] {
  return Object.keys(config)
    .filter((k) => DEVICE_PATTERN.test(k))
    .sort()
    .map((device) => ({
      device,
      drive: config[device] ?? '',
      media: config[`${device}:media`] === 'cdrom' ? 'cdrom' : 'disk',
    }));
}

/** The info keys: identity and state first, then the configuration in key order. */
export function serverInfo(
  meta: ServerMeta,
  run: ServerRun | undefined,
  omitDefaults: boolean,
): Info {
  const info: Info = {
    server: meta.server,
    name: meta.config.name ?? '',
    user: meta.user,
    status: run ? 'active' : 'stopped',
  };
  const config: ServerConfig = { smp: 'auto', persistent: 'false', ...meta.config };
  if (omitDefaults) {
    if (meta.config.smp === undefined) delete config.smp;
    if (meta.config.persistent === undefined) delete config.persistent;
  }
  for (const key of Object.keys(config).sort()) {
    if (key === 'name') continue;
    const value = config[key] ?? '';
    let shown: InfoValue = value;
    if (LISTS.has(key)) shown = value.split(' ');
    else if (NUMBERS.has(key) || (key === 'smp' && value !== 'auto')) shown = Number(value);
    info[key] = shown;
  }
  if (run) {
    info.started = run.started;
    info['nic:0:dhcp:ip'] = run.ip;
  }
  return info;
}
