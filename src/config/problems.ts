/**
 * Problem collection and nginx-style formatting. The control plane reports every problem it
 * finds, each with the file and line it came from, before giving up (nginx -t stops at the first).
 */
import type { ConfigProblem, SourceLoc } from './types.js';

/** Collects problems (and, apart, warnings) in the order they are found. */
export class Problems {
  readonly list: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  add(message: string, at: SourceLoc, hint?: string): void {
    const p: ConfigProblem = hint === undefined
      ? { message, file: at.file, line: at.line }
      : { message, file: at.file, line: at.line, hint };
    this.list.push(p);
  }

  /** A warning: reported (nginx's `[warn]`), but the configuration still loads. */
  warn(message: string, at: SourceLoc, hint?: string): void {
    this.warnings.push(hint === undefined
      ? { message, file: at.file, line: at.line, level: 'warn' }
      : { message, file: at.file, line: at.line, hint, level: 'warn' });
  }

  /** Errors only: warnings do not fail a load. */
  get count(): number {
    return this.list.length;
  }
}

/**
 * Formats a problem as nginx does: `[emerg] MESSAGE in FILE:LINE` (`[warn]` for a warning).
 * A problem with line 0 has no position (nginx's `no "events" section in configuration`,
 * a main file that cannot be opened) and is printed without the ` in FILE:LINE` part.
 * The hint is not included: the CLI prints it on its own line.
 */
export function formatProblem(p: ConfigProblem): string {
  return `[${p.level ?? 'emerg'}] ${problemText(p)}`;
}

/** `MESSAGE in FILE:LINE` without the level, for an error log that adds its own. */
export function problemText(p: ConfigProblem): string {
  return p.line === 0 ? p.message : `${p.message} in ${p.file}:${p.line}`;
}
