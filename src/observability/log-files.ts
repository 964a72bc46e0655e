import { appendFile, createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { AccessLogBuffer, OpenLogFileCache, SyslogTarget } from '../config/types.js';
import { openFailedMessage } from '../config/include.js';
import { SyslogClient } from './syslog-client.js';

/** Something a log line can be written to. */
export interface LogSink {
  write(line: string): void;
}

/**
 * `access_log ... buffer=SIZE [flush=TIME] [gzip[=LEVEL]]`, as ngx_http_log_module buffers: lines
 * are kept until the next one does not fit (a line larger than the buffer goes out alone), until
 * FLUSH after the first kept line, or until the log is reopened or closed. With gzip each flush
 * is one gzip member appended to the file (`zcat` reads them all).
 */
class LineBuffer {
  readonly spec: AccessLogBuffer;
  readonly #out: (data: Buffer) => void;
  #lines: Buffer[] = [];
  #size = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(spec: AccessLogBuffer, out: (data: Buffer) => void) {
    this.spec = spec;
    this.#out = out;
  }

  write(line: string): void {
    const bytes = Buffer.from(line, 'utf8');
    if (this.#size + bytes.length > this.spec.size) this.flush();
    if (bytes.length > this.spec.size) {
      this.#emit(bytes);
      return;
    }
    this.#lines.push(bytes);
    this.#size += bytes.length;
    if (this.spec.flush > 0 && this.#timer === null) {
      this.#timer = setTimeout(() => this.flush(), this.spec.flush);
      this.#timer.unref();
    }
  }

  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#size === 0) return;
    const data = Buffer.concat(this.#lines, this.#size);
    this.#lines = [];
    this.#size = 0;
    this.#emit(data);
  }

  #emit(data: Buffer): void {
    this.#out(this.spec.gzip > 0 ? gzipSync(data, { level: this.spec.gzip }) : data);
  }
}

/** An open file of a log whose path has variables, kept by open_log_file_cache. */
interface CachedFile {
  readonly stream: WriteStream;
  lastUse: number;
}

/**
 * The open log files of one proxy process, shared by every target that names the same path.
 * 'stdout' and 'stderr' are the process streams (or the library user's sink, when given).
 */
export class LogFiles {
  readonly #files = new Map<string, WriteStream>();
  /** Files of variable-path logs, least recently used first (open_log_file_cache). */
  readonly #cached = new Map<string, CachedFile>();
  #sweeper: NodeJS.Timeout | null = null;
  /** Lines waiting for their file to be appended to, per path (open_log_file_cache off). */
  readonly #appending = new Map<string, string[]>();
  readonly #buffers = new Map<string, LineBuffer>();
  readonly #stderr: LogSink;
  readonly #stdout: LogSink;
  #syslog: SyslogClient | null = null;

  constructor(overrides: { stderr?: LogSink | undefined; stdout?: LogSink | undefined } = {}) {
    this.#stderr = overrides.stderr ?? { write: (l) => void process.stderr.write(l) };
    this.#stdout = overrides.stdout ?? { write: (l) => void process.stdout.write(l) };
  }

  /** A sink for `path`; with `buffer`, lines to it are buffered (every sink of a buffered path is). */
  sink(path: string, buffer: AccessLogBuffer | null = null): LogSink {
    const plain = this.#plain(path);
    const known = this.#buffers.get(path);
    if (buffer === null) return known ?? plain;
    if (known !== undefined && known.spec.size === buffer.size && known.spec.flush === buffer.flush && known.spec.gzip === buffer.gzip) return known;
    // A reload that changes the buffering: what the old buffer holds goes out first.
    known?.flush();
    const b = new LineBuffer(buffer, path === 'stderr' || path === 'stdout' ? (data) => plain.write(data.toString('latin1')) : (data) => void this.#files.get(path)?.write(data));
    this.#buffers.set(path, b);
    return b;
  }

  #plain(path: string): LogSink {
    if (path === 'stderr') return this.#stderr;
    if (path === 'stdout') return this.#stdout;
    if (!this.#files.has(path)) this.#files.set(path, openAppend(path));
    // Looked up on every write: after reopen() (logrotate) lines go to the new file. After
    // close() there is none and the line is dropped.
    return { write: (line) => void this.#files.get(path)?.write(line) };
  }

  /** Sends to a `syslog:` target with this severity (the line's trailing newline is not sent, as nginx). */
  syslog(target: SyslogTarget, severity: number, line: string): void {
    this.#syslog ??= new SyslogClient();
    this.#syslog.send(target, severity, line.endsWith('\n') ? line.slice(0, -1) : line);
  }

  /** A sink that sends every line to a `syslog:` target at its own severity (the access log's). */
  syslogSink(target: SyslogTarget): LogSink {
    return { write: (line) => this.syslog(target, target.severity, line) };
  }

  /**
   * A line for a log whose path has variables (evaluated for this request). Without
   * open_log_file_cache the file is opened for each line, as nginx does (a file moved away is
   * never written again); with it, up to `max` files stay open until `inactive` passes without a
   * line. nginx makes no directories for such a file, and neither does Sluice.
   */
  writeVariable(path: string, line: string, cache: OpenLogFileCache | null, onError: (message: string) => void): void {
    if (cache === null) {
      const pending = this.#appending.get(path);
      if (pending !== undefined) {
        pending.push(line);
        return;
      }
      const lines = [line];
      this.#appending.set(path, lines);
      // One append at a time per file keeps the lines in order.
      const next = (): void => {
        const batch = lines.splice(0).join('');
        appendFile(path, batch, (err) => {
          if (err) onError(openFailedMessage(path, err));
          if (lines.length > 0) next();
          else this.#appending.delete(path);
        });
      };
      next();
      return;
    }
    const now = Date.now();
    let f = this.#cached.get(path);
    if (f !== undefined) {
      this.#cached.delete(path);
    } else {
      const stream = createWriteStream(path, { flags: 'a' });
      stream.on('error', (err) => {
        onError(openFailedMessage(path, err));
        if (this.#cached.get(path)?.stream === stream) this.#cached.delete(path);
      });
      f = { stream, lastUse: now };
      while (this.#cached.size >= cache.max) {
        const [oldest, entry] = this.#cached.entries().next().value as [string, CachedFile];
        entry.stream.end();
        this.#cached.delete(oldest);
      }
    }
    f.lastUse = now;
    this.#cached.set(path, f);
    f.stream.write(line);
    this.#sweep(cache.inactive);
  }

  /** Closes cached files unused for `inactive`. */
  #sweep(inactive: number): void {
    if (this.#sweeper !== null) return;
    this.#sweeper = setTimeout(() => {
      this.#sweeper = null;
      const cutoff = Date.now() - inactive;
      for (const [path, f] of this.#cached) {
        if (f.lastUse > cutoff) continue;
        f.stream.end();
        this.#cached.delete(path);
      }
      if (this.#cached.size > 0) this.#sweep(inactive);
    }, Math.max(inactive, 1));
    this.#sweeper.unref();
  }

  #closeCached(): void {
    for (const f of this.#cached.values()) f.stream.end();
    this.#cached.clear();
  }

  /** Reopen every file (logrotate); buffered lines go to the old file first, new ones to the new file. */
  reopen(): void {
    for (const b of this.#buffers.values()) b.flush();
    this.#closeCached();
    for (const [path, old] of this.#files) {
      this.#files.set(path, openAppend(path));
      old.end();
    }
  }

  close(): Promise<void> {
    for (const b of this.#buffers.values()) b.flush();
    this.#buffers.clear();
    this.#closeCached();
    if (this.#sweeper !== null) clearTimeout(this.#sweeper);
    this.#sweeper = null;
    this.#syslog?.close();
    this.#syslog = null;
    const all = [...this.#files.values()].map(
      (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.end(resolve))),
    );
    this.#files.clear();
    return Promise.all(all).then(() => undefined);
  }
}

export function openAppend(path: string): WriteStream {
  // No mkdir: the configuration check has made sure the directory exists (nginx creates none).
  const stream = createWriteStream(path, { flags: 'a' });
  // A log file that cannot be written must never take the proxy down.
  stream.on('error', (err) => process.stderr.write(`sluice: [alert] cannot write log file "${path}": ${err.message}\n`));
  return stream;
}
