/**
 * Every log file a configuration writes (error_log and access_log targets at every level), for
 * the primary and the workers to prepare when worker processes run as `user`: nginx's master opens
 * them as root and hands them to that user (ngx_reopen_files' fchown).
 */
import { closeSync, chownSync, openSync } from 'node:fs';
import type { Config, LocationConfig, Settings } from '../config/types.js';

export function logPaths(config: Config): string[] {
  const out = new Set<string>();
  const add = (s: Settings): void => {
    for (const t of s.errorLogs) out.add(t.path);
    for (const t of s.accessLogs) out.add(t.path);
  };
  for (const t of config.errorLogs) out.add(t.path);
  const http = config.http;
  if (http !== null) {
    add(http.settings);
    const pending: LocationConfig[] = [];
    for (const server of http.servers) {
      add(server.settings);
      pending.push(...server.locations);
    }
    for (let l = pending.pop(); l !== undefined; l = pending.pop()) {
      add(l.settings);
      pending.push(...l.locations);
    }
  }
  // The standard streams and variable paths (made per request) are not files to prepare.
  return [...out].filter((p) => p !== 'stderr' && p !== 'stdout' && !p.includes('$') && !p.startsWith('syslog:'));
}

/**
 * Makes each log file if missing (its directory exists: the configuration check says so) and gives it to `uid`, so a worker that runs
 * as that user can open it again after a reload or a reopen. Returns the failures, as nginx words
 * them (`chown("/var/log/x.log", 33) failed (1: Operation not permitted)`).
 */
export function handLogsTo(paths: readonly string[], uid: number): string[] {
  const failures: string[] = [];
  for (const path of paths) {
    try {
      closeSync(openSync(path, 'a'));
      chownSync(path, uid, -1);
    } catch (e) {
      failures.push(`chown("${path}", ${uid}) failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return failures;
}
