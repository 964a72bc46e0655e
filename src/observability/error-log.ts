import type { ErrorLogTarget, LogLevel } from '../config/types.js';
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
  readonly #targets: { sink: LogSink; rank: number }[];
  readonly #minRank: number;

  constructor(targets: readonly ErrorLogTarget[], files: LogFiles) {
    this.#targets = targets.map((t) => ({ sink: files.sink(t.path), rank: levelRank(t.level) }));
    this.#minRank = Math.min(...this.#targets.map((t) => t.rank), LEVELS.length);
  }

  enabled(level: LogLevel): boolean {
    return levelRank(level) >= this.#minRank;
  }

  log(level: LogLevel, message: string, connection?: number): void {
    const rank = levelRank(level);
    if (rank < this.#minRank) return;
    const line = `${errorLogTime(new Date())} [${level}] ${process.pid}#0: ${connection !== undefined ? `*${connection} ` : ''}${message}\n`;
    for (const t of this.#targets) if (rank >= t.rank) t.sink.write(line);
  }
}
