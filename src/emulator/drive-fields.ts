/**
 * What a drive is, and the checks on the fields a client may send to drives/create and
 * drives/UUID/set. Unknown or read-only keys are refused (400 usage) rather than
 * ignored, so a client that sends something the service would not take finds out here.
 */
import { parseByteSize, UUID_PATTERN } from '../inputs/fields.js';
import { EmulatorApiError } from './api-error.js';
import type { Quirks } from './options.js';
import type { Fields, Info, InfoValue } from './wire-format.js';

export type ClaimType = 'exclusive' | 'shared';

export interface DriveCounters {
  readBytes: number;
  readRequests: number;
  writeBytes: number;
  writeRequests: number;
}

/** A drive's metadata as stored in <uuid>.json. */
export interface DriveMeta {
  drive: string;
  name: string;
  size: number;
  user: string;
  claimType: ClaimType;
  readers: string[];
  tags: string[];
  /** user:* keys, without the `user:` prefix. */
  userKeys: Record<string, string>;
  encryptionCipher: string;
  tier: string;
  counters: DriveCounters;
}

/** Changes a create or set body asks for; absent = unchanged. */
export interface DriveChanges {
  name?: string;
  size?: number;
  claimType?: ClaimType;
  readers?: string[];
  tags?: string[];
  /** An empty value removes the key. */
  userKeys?: Record<string, string>;
  encryptionCipher?: string;
  tier?: string;
}

/** Largest drive the emulator makes (the service's own limit is not documented). */
export const MAX_DRIVE_BYTES = 2 ** 41;

/** `size` in bytes or with a binary k/M/G/T suffix (the suffix base is not documented). */
export function parseDriveSize(raw: string): number {
  // The API documents whole numbers with an optional suffix: no decimals.
  const bytes = raw.includes('.') ? NaN : (parseByteSize(raw.trim()) ?? NaN);
  if (!(bytes >= 1 && bytes <= MAX_DRIVE_BYTES)) {
    throw new EmulatorApiError(
      'usage',
      `Invalid size ${JSON.stringify(raw)}: expected 1 to ${MAX_DRIVE_BYTES} bytes, optionally with a k, M, G or T suffix`,
    );
  }
  return bytes;
}

function one(key: string, value: string | string[]): string {
  if (Array.isArray(value))
    throw new EmulatorApiError('usage', `Field ${key} takes one value, not a list`);
  return value;
}

/** One value out of `choices`, else a usage error naming the field and the choices. */
function oneOf<const C extends string>(
  key: string,
  value: string | string[],
  choices: readonly C[],
): C {
  const v = one(key, value);
  if (!(choices as readonly string[]).includes(v)) {
    throw new EmulatorApiError(
      'usage',
      `Invalid ${key} ${JSON.stringify(v)}: expected ${choices.join(' or ')}`,
    );
  }
  return v as C;
}

function many(value: string | string[]): string[] {
  return (Array.isArray(value) ? value : value.split(/\s+/)).filter((v) => v !== '');
}

const CREATE_ONLY = new Set(['encryption:cipher', 'tier', 'avoid']);

export function parseChanges(fields: Fields, mode: 'create' | 'set'): DriveChanges {
  const changes: DriveChanges = {};
  for (const [key, value] of fields) {
    if (key.startsWith('user:') && key.length > 5) {
      changes.userKeys = { ...changes.userKeys, [key.slice(5)]: one(key, value) };
      continue;
    }
    if (mode === 'set' && CREATE_ONLY.has(key)) {
      throw new EmulatorApiError(
        'usage',
        `Field ${key} can only be given when the drive is created`,
      );
    }
    switch (key) {
      case 'name': {
        const name = one(key, value);
        if (name.trim() === '') throw new EmulatorApiError('usage', 'Field name must not be empty');
        changes.name = name;
        break;
      }
      case 'size':
        changes.size = parseDriveSize(one(key, value));
        break;
      case 'claim:type':
        changes.claimType = oneOf(key, value, ['exclusive', 'shared']);
        break;
      case 'readers': {
        const readers = many(value);
        const bad = readers.find((r) => !UUID_PATTERN.test(r));
        if (bad !== undefined) {
          throw new EmulatorApiError(
            'usage',
            `Invalid reader ${JSON.stringify(bad)}: expected user UUIDs`,
          );
        }
        changes.readers = readers.map((r) => r.toLowerCase());
        break;
      }
      case 'tags':
        changes.tags = many(value);
        break;
      case 'encryption:cipher':
        changes.encryptionCipher = oneOf(key, value, ['none', 'aes-xts-plain']);
        break;
      case 'tier': {
        const tier = one(key, value);
        if (!/^[a-z][a-z0-9-]*$/.test(tier)) {
          throw new EmulatorApiError(
            'usage',
            `Invalid tier ${JSON.stringify(tier)}: expected a tier name such as disk`,
          );
        }
        changes.tier = tier;
        break;
      }
      case 'avoid':
        // Placement hint for other hardware: meaningless on one emulator, accepted.
        break;
      default:
        throw new EmulatorApiError(
          'usage',
          `Unknown or read-only field ${JSON.stringify(key)} for drives/${mode}`,
        );
    }
  }
  if (mode === 'create') {
    if (changes.name === undefined) throw new EmulatorApiError('usage', 'Field name is required');
    if (changes.size === undefined) throw new EmulatorApiError('usage', 'Field size is required');
  }
  return changes;
}

/** What a drive's info shows beyond its metadata: who uses it right now. */
export interface DriveUse {
  /** Claims of running servers and copies on it. */
  claimed: string[];
  /** Its `imaging` value while a copy onto it is queued or running. */
  imaging?: string;
}

/** The info keys, in the order the service lists them. */
export function driveInfo(
  meta: DriveMeta,
  use: DriveUse = { claimed: [] },
  quirks: Quirks = {},
): Info {
  const counter = (n: number) => (quirks.stringCounters ? String(n) : n);
  const info: Info = {
    drive: meta.drive,
    name: meta.name,
    size: meta.size,
    user: meta.user,
    status: use.imaging === undefined ? 'active' : 'imaging',
    'claim:type': meta.claimType,
    readers: meta.readers,
    tags: meta.tags,
    'encryption:cipher': meta.encryptionCipher,
    tier: meta.tier,
    'read:bytes': counter(meta.counters.readBytes),
    'read:requests': counter(meta.counters.readRequests),
    'write:bytes': counter(meta.counters.writeBytes),
    'write:requests': counter(meta.counters.writeRequests),
  };
  if (use.claimed.length > 0) info.claimed = use.claimed;
  if (use.imaging !== undefined) info.imaging = use.imaging;
  for (const [k, v] of Object.entries(meta.userKeys)) info[`user:${k}`] = v;
  if (!quirks.omitDefaults) return info;
  const defaults = (key: string, value: InfoValue) =>
    (key === 'claim:type' && value === 'exclusive') || (Array.isArray(value) && value.length === 0);
  return Object.fromEntries(Object.entries(info).filter(([k, v]) => !defaults(k, v)));
}
