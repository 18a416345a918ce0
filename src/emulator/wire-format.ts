/**
 * The API's two formats. Requests: `text/plain` lines `key value` (split at the first
 * space; an escaped `\n` in a value is a newline) or an `application/json` object.
 * Responses: text unless the client sends `Accept: application/json`; one object as
 * `key value` lines (`X-Elastic-Output: properties`), a list as one value per line
 * (`X-Elastic-Output: list`), many objects as blank-line separated blocks.
 */
import { EmulatorApiError } from './api-error.js';

/** A request's fields: multi-valued ones (tags, readers) may come as JSON arrays. */
export type Fields = Map<string, string | string[]>;

/** One info value: a number, a string, or a space-separated list in text. */
export type InfoValue = string | number | string[];
export type Info = Record<string, InfoValue>;

export function parseFields(body: Buffer, contentType: string | undefined): Fields {
  const fields: Fields = new Map();
  const text = body.toString('utf8');
  if (/^application\/json\b/i.test(contentType ?? '')) {
    if (text.trim() === '') return fields;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new EmulatorApiError('usage', 'Request body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new EmulatorApiError('usage', 'Request body must be a JSON object');
    }
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof value === 'string') fields.set(key, value);
      else if (typeof value === 'number' && Number.isFinite(value)) fields.set(key, String(value));
      else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
        fields.set(key, value);
      } else {
        throw new EmulatorApiError(
          'usage',
          `Field ${key} must be a string, a number or a list of strings`,
        );
      }
    }
    return fields;
  }
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === '') continue;
    const space = raw.indexOf(' ');
    const key = space < 0 ? raw : raw.slice(0, space);
    const value = space < 0 ? '' : raw.slice(space + 1);
    fields.set(key, value.replace(/\\n/g, '\n'));
  }
  return fields;
}

export function wantsJson(accept: string | undefined): boolean {
  return /\bapplication\/json\b/i.test(accept ?? '');
}

function textValue(value: InfoValue): string {
  const s = Array.isArray(value) ? value.join(' ') : String(value);
  return s.replace(/\n/g, '\\n');
}

function textBlock(info: Info): string {
  return Object.entries(info)
    .filter(([, v]) => !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k} ${textValue(v)}\n`)
    .join('');
}

export interface Rendered {
  headers: Record<string, string>;
  body: Buffer;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export function renderObject(info: Info, json: boolean): Rendered {
  return {
    headers: {
      'content-type': json ? JSON_TYPE : TEXT_TYPE,
      'x-elastic-output': 'properties',
    },
    body: Buffer.from(json ? JSON.stringify(info) : textBlock(info)),
  };
}

/** Many objects: blank-line separated blocks, or a JSON array. */
export function renderObjects(infos: Info[], json: boolean): Rendered {
  return {
    headers: {
      'content-type': json ? JSON_TYPE : TEXT_TYPE,
      'x-elastic-output': 'properties',
    },
    body: Buffer.from(json ? JSON.stringify(infos) : infos.map(textBlock).join('\n')),
  };
}

/** A list of values; in JSON each value is an object under `key` (e.g. {"drive": uuid}). */
export function renderList(key: string, values: string[], json: boolean): Rendered {
  return {
    headers: { 'content-type': json ? JSON_TYPE : TEXT_TYPE, 'x-elastic-output': 'list' },
    body: Buffer.from(
      json
        ? JSON.stringify(values.map((v) => ({ [key]: v })))
        : values.map((v) => `${v}\n`).join(''),
    ),
  };
}
