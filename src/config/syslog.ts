/**
 * nginx's `syslog:` log targets (ngx_syslog_parse_args): `syslog:server=ADDRESS[:PORT]` (UDP, port
 * 514 by default) with `facility=` (local7), `severity=` (info; the access log's, the error log
 * uses each message's level), `tag=` (nginx's "nginx"; Sluice's "sluice") and `nohostname`.
 */
import { splitHostPort } from './address.js';
import type { SyslogTarget } from './types.js';

const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'intern', 'lpr', 'news', 'uucp', 'clock', 'authpriv', 'ftp', 'ntp',
  'audit', 'alert', 'cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'];
export const SYSLOG_SEVERITIES = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'];

export type ParsedSyslog = { readonly ok: true; readonly target: SyslogTarget } | { readonly ok: false; readonly error: string; readonly hint?: string };

export function parseSyslog(text: string): ParsedSyslog {
  let server: { host: string; port: number } | null = null;
  let facility: number | null = null;
  let severity: number | null = null;
  let tag: string | null = null;
  let nohostname = false;
  for (const p of text.slice('syslog:'.length).split(',')) {
    if (p.startsWith('server=')) {
      if (server !== null) return { ok: false, error: 'duplicate syslog "server"' };
      const url = p.slice('server='.length);
      if (url.startsWith('unix:')) {
        return { ok: false, error: `unix domain sockets are not supported in syslog server "${url}"`,
          hint: 'Node.js has no Unix datagram sockets; send to a syslog daemon over UDP (e.g. "server=127.0.0.1") or log to a file' };
      }
      const r = splitHostPort(url, { allowZeroPort: false, allowWildcard: false });
      if (!r.ok) return { ok: false, error: `${r.error} in syslog server "${url}"` };
      server = { host: r.value.host, port: r.value.port ?? 514 };
    } else if (p.startsWith('facility=')) {
      if (facility !== null) return { ok: false, error: 'duplicate syslog "facility"' };
      const i = FACILITIES.indexOf(p.slice('facility='.length));
      if (i === -1) return { ok: false, error: `unknown syslog facility "${p.slice('facility='.length)}"` };
      facility = i;
    } else if (p.startsWith('severity=')) {
      if (severity !== null) return { ok: false, error: 'duplicate syslog "severity"' };
      const i = SYSLOG_SEVERITIES.indexOf(p.slice('severity='.length));
      if (i === -1) return { ok: false, error: `unknown syslog severity "${p.slice('severity='.length)}"` };
      severity = i;
    } else if (p.startsWith('tag=')) {
      if (tag !== null) return { ok: false, error: 'duplicate syslog "tag"' };
      const t = p.slice('tag='.length);
      // RFC 3164 4.1.3: alphanumeric, at most 32 characters (nginx allows "_" too).
      if (t.length > 32) return { ok: false, error: 'syslog tag length exceeds 32' };
      if (!/^[A-Za-z0-9_]*$/.test(t)) return { ok: false, error: 'syslog "tag" only allows alphanumeric characters and underscore' };
      tag = t;
    } else if (p === 'nohostname') {
      nohostname = true;
    } else {
      return { ok: false, error: `unknown syslog parameter "${p}"` };
    }
  }
  if (server === null) return { ok: false, error: 'no syslog server specified' };
  return { ok: true, target: { host: server.host, port: server.port, facility: facility ?? 23, severity: severity ?? 6, tag: tag ?? 'sluice', nohostname } };
}
