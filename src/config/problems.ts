/**
 * Problem collection and nginx-style formatting. The control plane reports every problem it
 * finds, each with the file and line it came from, before giving up (nginx -t stops at the first).
 */
import type { ConfigProblem, SourceLoc } from './types.js';

/** Collects problems in the order they are found. */
export class Problems {
  readonly list: ConfigProblem[] = [];

  add(message: string, at: SourceLoc, hint?: string): void {
    const p: ConfigProblem = hint === undefined
      ? { message, file: at.file, line: at.line }
      : { message, file: at.file, line: at.line, hint };
    this.list.push(p);
  }

  get count(): number {
    return this.list.length;
  }
}

/**
 * Formats a problem as nginx does: `[emerg] MESSAGE in FILE:LINE`.
 * A problem with line 0 has no position (nginx's `no "events" section in configuration`,
 * a main file that cannot be opened) and is printed without the ` in FILE:LINE` part.
 * The hint is not included: the CLI prints it on its own line.
 */
export function formatProblem(p: ConfigProblem): string {
  if (p.line === 0) return `[emerg] ${p.message}`;
  return `[emerg] ${p.message} in ${p.file}:${p.line}`;
}
