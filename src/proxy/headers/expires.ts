/**
 * nginx's `expires` (ngx_http_set_expires): the Expires and Cache-Control headers of a response,
 * replacing the upstream's (the Expires nginx tracks gets the new value; the first Cache-Control
 * gets the new value and the others are dropped), or added at the end.
 */
import { parseExpires } from '../../config/expires.js';
import type { ExpiresSetting } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';

const EPOCH = 'Thu, 01 Jan 1970 00:00:01 GMT';
/** nginx's `max`: the end of 2037, "10 years" of max-age. */
const MAX = 'Thu, 31 Dec 2037 23:55:55 GMT';

/** The next time of day `seconds` after midnight, local time (ngx_next_time), in epoch seconds. */
function nextTime(seconds: number, nowMs: number): number {
  const d = new Date(nowMs);
  d.setHours(Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60, 0);
  if (d.getTime() > nowMs - (nowMs % 1000)) return Math.floor(d.getTime() / 1000);
  d.setDate(d.getDate() + 1);
  return Math.floor(d.getTime() / 1000);
}

/** Sets one header in the flat list: the value of the `which` occurrence of `name`, else appended. */
function setHeader(out: string[], name: string, value: string, which: 'first' | 'last'): void {
  const lower = name.toLowerCase();
  let at = -1;
  for (let i = 0; i < out.length; i += 2) {
    if ((out[i] as string).toLowerCase() !== lower) continue;
    at = i;
    if (which === 'first') break;
  }
  if (at === -1) out.push(name, value);
  else out[at + 1] = value;
}

/** Drops every Cache-Control after the first. */
function keepFirstCacheControl(out: string[]): void {
  let seen = false;
  for (let i = 0; i < out.length;) {
    if ((out[i] as string).toLowerCase() === 'cache-control') {
      if (seen) {
        out.splice(i, 2);
        continue;
      }
      seen = true;
    }
    i += 2;
  }
}

function lastModified(out: readonly string[]): number {
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if ((out[i] as string).toLowerCase() === 'last-modified') {
      const t = Date.parse(out[i + 1] as string);
      return Number.isNaN(t) ? -1 : Math.floor(t / 1000);
    }
  }
  return -1;
}

/** Applies `expires` to the headers of a response whose status nginx lets it touch. */
export function applyExpires(setting: ExpiresSetting, ctx: RequestContext, vars: Variables, out: string[], nowMs = Date.now()): void {
  let e: ExpiresSetting = setting;
  if (e.kind === 'variable') {
    // nginx: a value that does not parse, or "off", leaves the response alone.
    const parsed = parseExpires(vars.evaluate(e.value, ctx), e.modified);
    if (!parsed.ok || parsed.value === null || parsed.value.kind === 'variable') return;
    e = parsed.value;
  }
  let expires: string;
  let cacheControl: string;
  if (e.kind === 'epoch') {
    expires = EPOCH;
    cacheControl = 'no-cache';
  } else if (e.kind === 'max') {
    expires = MAX;
    cacheControl = 'max-age=315360000';
  } else if (e.seconds === 0 && e.kind !== 'daily') {
    expires = new Date(nowMs - (nowMs % 1000)).toUTCString();
    cacheControl = 'max-age=0';
  } else {
    const now = Math.floor(nowMs / 1000);
    const modified = e.kind === 'modified' ? lastModified(out) : -1;
    let at: number;
    let maxAge: number;
    if (e.kind === 'daily') {
      at = nextTime(e.seconds, nowMs);
      maxAge = at - now;
    } else if (modified === -1) {
      at = now + e.seconds;
      maxAge = e.seconds;
    } else {
      at = modified + e.seconds;
      maxAge = at - now;
    }
    expires = new Date(at * 1000).toUTCString();
    // nginx looks at the configured time here, not the one a variable gave (ngx_http_set_expires).
    const configured = setting.kind === 'variable' ? 0 : e.seconds;
    cacheControl = configured < 0 || maxAge < 0 ? 'no-cache' : `max-age=${maxAge}`;
  }
  setHeader(out, 'Expires', expires, 'last');
  keepFirstCacheControl(out);
  setHeader(out, 'Cache-Control', cacheControl, 'first');
}
