/**
 * A log file whose directory does not exist fails the configuration, as in nginx: nginx opens its
 * log files while it reads the configuration (at `-t` too) and stops at
 * `open() "/var/log/x/access.log" failed (2: No such file or directory)`. Sluice checks only the
 * directory, without creating the file, and never makes a missing directory (nginx does not).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BuildContext } from './build-context.js';
import type { Directive } from './parser.js';

/** Reports nginx's open() failure when the directory of the log file `path` is missing or not a directory. */
export function checkLogDirectory(path: string, d: Directive, cx: BuildContext): void {
  const dir = dirname(path);
  let errno: string | null = null;
  try {
    if (!statSync(dir).isDirectory()) errno = '20: Not a directory';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Anything else (EACCES for a user that may not look into the directory: a worker running as
    // `user`) is left to the open itself, whose failure is logged.
    if (code === 'ENOENT') errno = '2: No such file or directory';
    else if (code === 'ENOTDIR') errno = '20: Not a directory';
  }
  if (errno !== null) {
    cx.problem(`open() "${path}" failed (${errno})`, d, `the directory "${dir}" must exist: Sluice does not create it (nginx neither); a relative path starts at the prefix`);
  }
}
