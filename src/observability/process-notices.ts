/**
 * The notices of the process that owns the signals (the primary, or the one process when there is
 * no primary), in nginx's master's words: "signal 1 (SIGHUP) received, reconfiguring",
 * "reopening logs", "exit". They go to the configured error log like every other line, so
 * `error_log FILE notice` holds the whole story of a reload or a shutdown, and to the command
 * line's standard error ("sluice: [notice] ...", in the same words) unless the error log already
 * writes them there.
 */
import { constants } from 'node:os';
import type { ErrorLogTarget, LogLevel } from '../config/types.js';
import { ErrorLog, levelRank } from './error-log.js';
import { LogFiles } from './log-files.js';

/** The error log in force now (a reload may replace it) and its targets. */
export interface CurrentLog {
  readonly write: (level: LogLevel, message: string) => void;
  readonly targets: readonly ErrorLogTarget[];
}

/** The one wording of a reload that was not applied, in the error log and on the command line. */
export const RELOAD_FAILED = 'reload failed: still serving the previous configuration';

/** What nginx's master says it does for each signal (ngx_signal_handler's `action`). */
const ACTIONS: Readonly<Partial<Record<NodeJS.Signals, string>>> = {
  SIGHUP: 'reconfiguring',
  SIGUSR1: 'reopening logs',
  SIGQUIT: 'shutting down',
  SIGTERM: 'exiting',
  SIGINT: 'exiting',
};

/**
 * nginx's line for a signal: "signal 3 (SIGQUIT) received, shutting down". nginx adds "from PID"
 * when the kernel names the sender; Node does not pass siginfo on, so the line has none, as
 * nginx's own has none for a signal without a sender.
 */
export function signalReceived(signal: NodeJS.Signals, again = false): string {
  const number = (constants.signals as Record<string, number | undefined>)[signal] ?? signal;
  return again
    ? `signal ${number} (${signal}) received again, exiting now`
    : `signal ${number} (${signal}) received${ACTIONS[signal] ? `, ${ACTIONS[signal]}` : ''}`;
}

/** True when one of these error log targets writes `level` to standard error already. */
export function logShowsOnStderr(targets: readonly ErrorLogTarget[], level: LogLevel): boolean {
  return targets.some((t) => !t.syslog && t.path === 'stderr' && levelRank(level) >= levelRank(t.level));
}

export class ProcessNotices {
  readonly #log: () => CurrentLog;
  readonly #say: (line: string) => void;

  /**
   * @param log the error log in force now
   * @param say writes one line of the command line's own output ("sluice: LINE" on stderr)
   */
  constructor(log: () => CurrentLog, say: (line: string) => void) {
    this.#log = log;
    this.#say = say;
  }

  tell(level: LogLevel, message: string): void {
    const { write, targets } = this.#log();
    write(level, message);
    if (!logShowsOnStderr(targets, level)) this.#say(`[${level}] ${message}`);
  }

  notice(message: string): void {
    this.tell('notice', message);
  }
}

/**
 * Writes lines to these error log targets from files opened for them alone: for the last lines
 * of a process whose own log files are closed already ("exit"), and for `-s`'s
 * "signal process started". A log that cannot be opened is reported on stderr and skipped.
 */
export async function logLines(targets: readonly ErrorLogTarget[], lines: readonly (readonly [LogLevel, string])[]): Promise<void> {
  const files = new LogFiles();
  try {
    const log = new ErrorLog(targets, files);
    for (const [level, message] of lines) log.log(level, message);
  } catch (e) {
    process.stderr.write(`sluice: [alert] could not open error log file: ${(e as Error).message}\n`);
  }
  await files.close();
}
