/**
 * The Content-Type of a file: its extension (nginx's ngx_http_set_exten: after the last "." of
 * the last path segment, unless the "." starts the segment) looked up, case-insensitively, in
 * the `types` table, else `default_type`.
 */
import type { Settings } from '../config/types.js';

export function extension(uri: string): string {
  for (let i = uri.length - 1; i > 1; i--) {
    const ch = uri[i];
    if (ch === '.' && uri[i - 1] !== '/') return uri.slice(i + 1);
    if (ch === '/') return '';
  }
  return '';
}

export function contentType(settings: Settings, uri: string): string {
  const ext = extension(uri);
  if (ext !== '') {
    const type = settings.files.types.get(ext.toLowerCase());
    if (type !== undefined) return type;
  }
  return settings.defaultType;
}
