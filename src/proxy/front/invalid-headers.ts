/**
 * nginx's `ignore_invalid_headers` and `underscores_in_headers`: a request header whose name has
 * anything but letters, digits and "-" (or "_" with underscores_in_headers on) is invalid, and
 * with ignore_invalid_headers on (the default) it is dropped before anything sees it: no
 * `$http_*` variable, never proxied (ngx_http_parse_header_line, ngx_http_v2_validate_header).
 * That is what keeps `X_Forwarded_User: admin` from reaching an upstream whose config clears
 * `X-Forwarded-User`. The address's default server decides, as nginx reads the head before it
 * knows the virtual server.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CoreSettings } from '../../config/types.js';

const VALID = /^[A-Za-z0-9-]+$/;
const VALID_WITH_UNDERSCORES = /^[A-Za-z0-9_-]+$/;

/** The header lines to keep and those dropped (name, value), or null when every line stays. */
export function dropInvalidHeaders(
  raw: readonly string[], headers: IncomingHttpHeaders, core: CoreSettings,
): { raw: string[]; headers: IncomingHttpHeaders; dropped: (readonly [string, string])[] } | null {
  if (!core.ignoreInvalidHeaders) return null;
  const valid = core.underscoresInHeaders ? VALID_WITH_UNDERSCORES : VALID;
  let dropped: (readonly [string, string])[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (!valid.test(raw[i] as string)) (dropped ??= []).push([raw[i] as string, raw[i + 1] as string]);
  }
  if (dropped === null) return null;
  const keptRaw: string[] = [];
  const keptHeaders: IncomingHttpHeaders = { ...headers };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (valid.test(name)) keptRaw.push(name, raw[i + 1] as string);
    else delete keptHeaders[name.toLowerCase()];
  }
  return { raw: keptRaw, headers: keptHeaders, dropped };
}
