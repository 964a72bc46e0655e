/**
 * `$fastcgi_script_name` and `$fastcgi_path_info` (ngx_http_fastcgi_split and
 * ngx_http_fastcgi_script_name_variable): the URI split by `fastcgi_split_path_info`, and
 * `fastcgi_index` added to a script name that ends in "/".
 */
import type { FastcgiSettings } from '../../config/types.js';

export interface FastcgiSplit {
  readonly scriptName: string;
  readonly pathInfo: string;
}

/** No regex, or one that does not match: the whole URI is the script name, the path info empty. */
export function fastcgiSplit(s: FastcgiSettings, uri: string): FastcgiSplit {
  const m = s.splitPathInfo === null ? null : s.splitPathInfo.exec(uri);
  if (m === null) return { scriptName: uri, pathInfo: '' };
  return { scriptName: m[1] ?? '', pathInfo: m[2] ?? '' };
}

export function fastcgiScriptName(s: FastcgiSettings, uri: string): string {
  const { scriptName } = fastcgiSplit(s, uri);
  return scriptName.endsWith('/') && s.index !== null ? scriptName + s.index : scriptName;
}
