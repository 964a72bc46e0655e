/**
 * Writes one response into the cache while it streams to the client (nginx writes the cache
 * file as the body passes through its event pipe): the entry header, then each body chunk as
 * the upstream delivers it, to a temp file (under proxy_temp_path, or beside the entry for
 * `use_temp_path=off`) that is renamed into place once the whole body is in. A crash, an upstream
 * that stops short, a client that leaves (the exchange is cancelled) or a write error leave no
 * entry: only a complete response is ever renamed. Memory stays bounded: when more than
 * {@link HIGH_WATER} bytes wait for the disk, the upstream is paused until they are written.
 */
import { close, createReadStream, createWriteStream, mkdir, open, rename, rm, copyFile, writev } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { CacheZone } from './cache-zone.js';

const openFd = promisify(open);
const writevFd = promisify(writev);
const closeFd = promisify(close);
const mkdirP = promisify(mkdir);
const renameP = promisify(rename);
const copyFileP = promisify(copyFile);
const rmP = promisify(rm);

/** Bytes queued for the disk above which the upstream is paused. */
const HIGH_WATER = 1024 * 1024;

export class CacheWriter {
  readonly #zone: CacheZone;
  readonly #hash: string;
  readonly #temp: string;
  readonly #final: string;
  /** Content-Length of the response, -1 when it had none: a body of another length is not stored. */
  readonly #expected: number;
  readonly #onError: (err: NodeJS.ErrnoException) => void;
  #queue: Buffer[] = [];
  #queued = 0;
  #fd: number | null = null;
  #writing = false;
  #ended = false;
  #done = false;
  #body = 0;
  #headerLength = 0;
  #up: Readable | null = null;
  #paused = false;
  #settle: () => void = ignore;
  /**
   * Resolved once the entry is in place or given up: the relay ends the client's response only
   * then, so a client that asks again after a complete response finds the entry (nginx renames the
   * file before it finalizes the request).
   */
  readonly settled = new Promise<void>((resolve) => void (this.#settle = resolve));

  constructor(zone: CacheZone, hash: string, header: Buffer, tempDir: string | null, expected: number, onError: (err: NodeJS.ErrnoException) => void) {
    this.#zone = zone;
    this.#hash = hash;
    this.#temp = zone.tempFor(hash, tempDir);
    this.#final = zone.fileFor(hash);
    this.#expected = expected;
    this.#onError = onError;
    this.#queue.push(header);
    this.#queued = header.length;
    this.#headerLength = header.length;
    void this.#open();
  }

  /** Tees `up`'s body into the entry: call before anything reads it. */
  attach(up: Readable): void {
    this.#up = up;
    up.on('data', this.#onData);
    up.once('end', this.#onEnd);
    // An upstream that closes without its end (reset, cancelled) leaves no entry.
    up.once('close', () => {
      if (!this.#ended) this.abort();
    });
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#done) return;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#body += chunk.length;
    if (this.#queued > HIGH_WATER && this.#up !== null && !this.#paused) {
      this.#paused = true;
      this.#up.pause();
    }
    this.#pump();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    if (this.#expected >= 0 && this.#body !== this.#expected) {
      this.abort();
      return;
    }
    this.#pump();
  };

  async #open(): Promise<void> {
    try {
      this.#fd = await openFd(this.#temp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return this.#fail(err as NodeJS.ErrnoException);
      try {
        await mkdirP(dirname(this.#temp), { recursive: true, mode: 0o700 });
        this.#fd = await openFd(this.#temp, 'wx', 0o600);
      } catch (err2) {
        return this.#fail(err2 as NodeJS.ErrnoException);
      }
    }
    if (this.#done) {
      await this.#discard();
      return;
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#writing || this.#fd === null || this.#done) return;
    if (this.#queue.length === 0) {
      if (this.#ended) void this.#commit();
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    this.#writing = true;
    void this.#write(batch);
  }

  async #write(batch: Buffer[]): Promise<void> {
    const fd = this.#fd as number;
    let bytes = 0;
    for (const b of batch) bytes += b.length;
    try {
      let left = batch;
      // writev may write less than asked: go on from where it stopped.
      for (let want = bytes; want > 0;) {
        const { bytesWritten } = await writevFd(fd, left);
        want -= bytesWritten;
        if (want > 0) left = rest(left, bytesWritten);
      }
    } catch (err) {
      this.#writing = false;
      return this.#fail(err as NodeJS.ErrnoException);
    }
    this.#writing = false;
    this.#queued -= bytes;
    if (this.#paused && this.#queued <= HIGH_WATER / 2) {
      this.#paused = false;
      this.#up?.resume();
    }
    if (this.#done) {
      await this.#discard();
      return;
    }
    this.#pump();
  }

  async #commit(): Promise<void> {
    this.#done = true;
    const fd = this.#fd as number;
    this.#fd = null;
    try {
      await closeFd(fd);
      try {
        await renameP(this.#temp, this.#final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          await mkdirP(dirname(this.#final), { recursive: true, mode: 0o700 });
          await renameP(this.#temp, this.#final);
        } else if (code === 'EXDEV') {
          // proxy_temp_path on another file system: nginx copies, then removes the temp file.
          const copy = `${this.#final}.${process.pid}.0`;
          await copyFileP(this.#temp, copy);
          await renameP(copy, this.#final);
          await rmP(this.#temp, { force: true });
        } else {
          throw err;
        }
      }
      this.#zone.stored(this.#hash, this.#headerLength + this.#body);
    } catch (err) {
      await rmP(this.#temp, { force: true }).catch(ignore);
      this.#onError(err as NodeJS.ErrnoException);
    }
    this.#settle();
  }

  /**
   * What the client side reads instead of `up`: the same bytes, the last chunk held back until
   * the entry is in place (or given up). A client that has the whole response then finds the
   * entry when it asks again, as with nginx, which renames the file before the request ends.
   */
  clientSide(up: Readable): Readable {
    let held: Buffer | null = null;
    const settled = this.settled;
    const t = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const previous = held;
        held = chunk;
        done(null, previous ?? undefined);
      },
      flush(done) {
        void settled.then(() => done(null, held ?? undefined));
      },
    });
    up.pipe(t);
    return t;
  }

  /** No entry: what was written goes away. Idempotent. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#settle();
    this.#queue = [];
    if (this.#paused) {
      this.#paused = false;
      this.#up?.resume();
    }
    if (!this.#writing) void this.#discard();
  }

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#done) return;
    this.abort();
    this.#onError(err);
  }

  async #discard(): Promise<void> {
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) await closeFd(fd).catch(ignore);
    await rmP(this.#temp, { force: true }).catch(ignore);
  }
}

/**
 * A new header for an entry (proxy_cache_revalidate's new lifetime) over the same body: written to
 * a temp file with the body copied from the entry, then renamed over it (nginx rewrites the header
 * in place; a header of another length needs a new file here). Failures leave the old entry.
 */
export async function rewriteEntry(zone: CacheZone, hash: string, header: Buffer, from: { readonly bodyStart: number; readonly length: number }, tempDir: string | null): Promise<void> {
  const temp = zone.tempFor(hash, tempDir);
  const final = zone.fileFor(hash);
  try {
    await mkdirP(dirname(temp), { recursive: true, mode: 0o700 });
    await writeFile(temp, header, { flag: 'wx', mode: 0o600 });
    if (from.length > 0) await pipeline(createReadStream(final, { start: from.bodyStart, end: from.bodyStart + from.length - 1 }), createWriteStream(temp, { flags: 'a' }));
    await renameP(temp, final);
    zone.stored(hash, header.length + from.length);
  } catch {
    await rmP(temp, { force: true }).catch(ignore);
  }
}

/** The buffers after the first `n` bytes. */
function rest(list: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of list) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

function ignore(): void {}
