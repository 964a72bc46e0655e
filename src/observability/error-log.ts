import type { ErrorLogTarget, LogLevel, SyslogTarget } from '../config/types.js';
import type { LogFiles, LogSink } from './log-files.js';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg'];

export function levelRank(level: LogLevel): number {
  return LEVELS.indexOf(level);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** nginx's error log time: "2026/11/22 04:40:00" (local time). */
export function errorLogTime(d: Date): string {
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * An error log in nginx's line format: `2026/11/22 04:40:00 [error] 1234#0: *5 message`.
 * One instance per distinct list of targets; `enabled` lets callers skip building messages.
 */
export class ErrorLog {
  readonly #targets: { sink: LogSink | null; syslog: SyslogTarget | null; rank: number }[];
  readonly #minRank: number;
  readonly #files: LogFiles;

  constructor(targets: readonly ErrorLogTarget[], files: LogFiles) {
    this.#files = files;
    this.#targets = targets.map((t) => ({ sink: t.syslog ? null : files.sink(t.path), syslog: t.syslog ?? null, rank: levelRank(t.level) }));
    this.#minRank = Math.min(...this.#targets.map((t) => t.rank), LEVELS.length);
  }

  enabled(level: LogLevel): boolean {
    return levelRank(level) >= this.#minRank;
  }

  log(level: LogLevel, message: string, connection?: number): void {
    const rank = levelRank(level);
    if (rank < this.#minRank) return;
    const line = `${errorLogTime(new Date())} [${level}] ${process.pid}#0: ${connection !== undefined ? `*${connection} ` : ''}${message}\n`;
    for (const t of this.#targets) {
      if (rank < t.rank) continue;
      // syslog: the whole line, date included, as nginx sends it; the severity is the line's level.
      if (t.syslog !== null) this.#files.syslog(t.syslog, LEVELS.length - 1 - rank, line);
      else t.sink!.write(line);
    }
  }
}
