/**
 * The value of nginx's `expires` (ngx_http_parse_expires): `epoch`, `max`, `off`, `@TIME` (a time
 * of day), or TIME with an optional sign, in whole seconds. Used when the configuration is read
 * and, for a value with variables, for every response.
 */
import type { ExpiresSetting } from './types.js';
import { parseDuration } from './units.js';

export type ParsedExpires = { readonly ok: true; readonly value: ExpiresSetting | null } | { readonly ok: false; readonly error: string };

const DAY_SECONDS = 24 * 60 * 60;

/** `modified`: the value follows `expires modified` (no epoch/max/off, no daily time). Null value: `off`. */
export function parseExpires(text: string, modified: boolean): ParsedExpires {
  if (!modified) {
    if (text === 'epoch') return { ok: true, value: { kind: 'epoch' } };
    if (text === 'max') return { ok: true, value: { kind: 'max' } };
    if (text === 'off') return { ok: true, value: null };
  }
  let kind: 'access' | 'modified' | 'daily' = modified ? 'modified' : 'access';
  let rest = text;
  let minus = false;
  if (rest.startsWith('@')) {
    if (modified) return { ok: false, error: 'daily time cannot be used with "modified" parameter' };
    kind = 'daily';
    rest = rest.slice(1);
  } else if (rest.startsWith('+')) {
    rest = rest.slice(1);
  } else if (rest.startsWith('-')) {
    minus = true;
    rest = rest.slice(1);
  }
  const ms = parseDuration(rest, true);
  if (ms === null) return { ok: false, error: 'invalid value' };
  const seconds = Math.floor(ms / 1000);
  if (kind === 'daily' && seconds > DAY_SECONDS) return { ok: false, error: 'daily time value must be less than 24 hours' };
  return { ok: true, value: { kind, seconds: minus ? -seconds : seconds } };
}
