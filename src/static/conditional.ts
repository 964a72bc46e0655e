/**
 * nginx's not_modified filter (ngx_http_not_modified_filter_module) for a 200 Sluice answers
 * itself: If-Unmodified-Since and If-Match give 412 when they fail; then If-Modified-Since (as
 * `if_modified_since` says) and If-None-Match give 304 when both that are present agree. nginx
 * checks only these headers' first line, and proxied responses are never touched (it turns the
 * filter off for responses it does not cache).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FileSettings } from '../config/types.js';
import { parseHttpTime } from '../proxy/answer/http-date.js';

/** What a 200 becomes. */
export type Conditional = 200 | 304 | 412;

/** The first line of a request header (nginx reads only that one of these). */
export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** ngx_http_test_if_match: the entity tag in a comma list, or `*`; `weak` compares W/ tags as their strong forms. */
function matches(list: string, etag: string | null, weak: boolean): boolean {
  if (list === '*') return true;
  if (etag === null) return false;
  let tag = etag;
  if (weak && tag.length > 2 && tag.startsWith('W/')) tag = tag.slice(2);
  let start = 0;
  const end = list.length;
  while (start < end) {
    if (weak && end - start > 2 && list[start] === 'W' && list[start + 1] === '/') start += 2;
    if (tag.length > end - start) return false;
    if (list.startsWith(tag, start)) {
      let at = start + tag.length;
      while (at < end && (list[at] === ' ' || list[at] === '\t')) at++;
      if (at === end || list[at] === ',') return true;
    }
    while (start < end && list[start] !== ',') start++;
    while (start < end && (list[start] === ' ' || list[start] === '\t' || list[start] === ',')) start++;
  }
  return false;
}

/**
 * The status for a 200 with this Last-Modified (seconds; -1 for none) and ETag (null for none).
 * `mode` is `if_modified_since`.
 */
export function conditionalStatus(headers: IncomingHttpHeaders, files: FileSettings, lastModified: number, etag: string | null): Conditional {
  const ius = first(headers['if-unmodified-since']);
  if (ius !== undefined && (lastModified === -1 || parseHttpTime(ius) < lastModified)) return 412;
  const ifMatch = first(headers['if-match']);
  if (ifMatch !== undefined && !matches(ifMatch, etag, false)) return 412;
  const ims = first(headers['if-modified-since']);
  const inm = first(headers['if-none-match']);
  if (ims === undefined && inm === undefined) return 200;
  if (ims !== undefined && modified(ims, files.ifModifiedSince, lastModified)) return 200;
  if (inm !== undefined && !matches(inm, etag, true)) return 200;
  return 304;
}

/** ngx_http_test_if_modified. */
function modified(ims: string, mode: FileSettings['ifModifiedSince'], lastModified: number): boolean {
  if (lastModified === -1 || mode === 'off') return true;
  const t = parseHttpTime(ims);
  if (t === lastModified) return false;
  return mode === 'exact' || t < lastModified;
}
