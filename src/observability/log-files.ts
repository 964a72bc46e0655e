import { createWriteStream, mkdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { dirname } from 'node:path';

/** Something a log line can be written to. */
export interface LogSink {
  write(line: string): void;
}

/**
 * The open log files of one runtime, shared by every target that names the same path.
 * 'stdout' and 'stderr' are the process streams (or the library user's sink, when given).
 */
export class LogFiles {
  readonly #files = new Map<string, WriteStream>();
  readonly #stderr: LogSink;
  readonly #stdout: LogSink;

  constructor(overrides: { stderr?: LogSink | undefined; stdout?: LogSink | undefined } = {}) {
    this.#stderr = overrides.stderr ?? { write: (l) => void process.stderr.write(l) };
    this.#stdout = overrides.stdout ?? { write: (l) => void process.stdout.write(l) };
  }

  sink(path: string): LogSink {
    if (path === 'stderr') return this.#stderr;
    if (path === 'stdout') return this.#stdout;
    if (!this.#files.has(path)) this.#files.set(path, openAppend(path));
    // Looked up on every write: after reopen() (logrotate) lines go to the new file. After
    // close() there is none and the line is dropped.
    return { write: (line) => void this.#files.get(path)?.write(line) };
  }

  /** Reopen every file (logrotate); lines written meanwhile go to the new file. */
  reopen(): void {
    for (const [path, old] of this.#files) {
      this.#files.set(path, openAppend(path));
      old.end();
    }
  }

  close(): Promise<void> {
    const all = [...this.#files.values()].map(
      (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.end(resolve))),
    );
    this.#files.clear();
    return Promise.all(all).then(() => undefined);
  }
}

function openAppend(path: string): WriteStream {
  mkdirSync(dirname(path), { recursive: true });
  const stream = createWriteStream(path, { flags: 'a' });
  // A log file that cannot be written must never take the proxy down.
  stream.on('error', (err) => process.stderr.write(`sluice: [alert] cannot write log file "${path}": ${err.message}\n`));
  return stream;
}
