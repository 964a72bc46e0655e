/**
 * One `proxy_cache_path` zone at run time: the directory is the store every worker process
 * shares (an entry is a file named by the md5 of its key under nginx's `levels` directories, so a
 * response one worker cached is a hit for the others at once), and this process keeps an index of
 * sizes and last uses for the loader and the manager.
 *
 * - Loader (nginx's cache loader): at start, one pass over the directory indexes what a previous
 *   run left, and removes temp files a crash left behind.
 * - Manager (nginx's cache manager): every {@link MANAGER_INTERVAL} ms, in one process only
 *   (worker 0), re-reads the directory (the other workers' writes included), removes entries not
 *   used for `inactive`, then the least recently used ones while the cache is over `max_size` or
 *   the disk has less than `min_free` available. A hit refreshes its file's mtime (at most once
 *   per tenth of `inactive`), so every process's manager sees the same last use.
 *
 * Zones live as long as the process (keyed by name and path), so a reload keeps the index.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat, statfs, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheZoneConfig } from '../../config/types.js';
import { WORKER_INDEX_ENV } from '../../cluster/process-settings.js';

/** How often the manager runs (nginx's manager wakes at most every 10 s when idle). */
export const MANAGER_INTERVAL = 10_000;

/** A temp file older than this in the cache directory belongs to no live writer (use_temp_path=off). */
const STALE_TEMP_MS = 60_000;

/** nginx: one megabyte of keys zone holds about 8000 keys. */
const KEYS_PER_BYTE = 8000 / (1024 * 1024);

const ENTRY_NAME = /^[0-9a-f]{32}$/;
const TEMP_NAME = /^[0-9a-f]{32}\.\d+\.\d+$/;

interface IndexEntry {
  size: number;
  /** ms since the epoch. */
  used: number;
  /** When this process last refreshed the file's mtime. */
  touched: number;
}

/** What a zone counts, for the metrics and status pages. */
export interface CacheCounters {
  hits: number;
  misses: number;
  /** Body bytes sent from cache files. */
  bytesFromCache: number;
  evictions: number;
  /** Entries written. */
  stores: number;
}

/** A key being fetched from upstream by one request of this process (proxy_cache_lock, `updating`). */
export interface Updating {
  /** ms (performance.now()) when the fetch began: proxy_cache_lock_age counts from here. */
  readonly since: number;
  /** Resolved when the fetch ends, stored or not. */
  readonly done: Promise<void>;
}

export class CacheZone {
  config: CacheZoneConfig;
  /**
   * Keys being fetched, by entry hash (nginx marks them in the shared zone: `c->updating`,
   * `c->lock`). Per process: requests in another worker do not wait for these.
   */
  readonly updating = new Map<string, Updating>();
  readonly #index = new Map<string, IndexEntry>();
  #size = 0;
  /** proxy_cache_min_uses: requests per key seen by this process since its last store. */
  readonly #uses = new Map<string, number>();
  readonly counters: CacheCounters = { hits: 0, misses: 0, bytesFromCache: 0, evictions: 0, stores: 0 };
  #timer: NodeJS.Timeout | null = null;
  #managing: Promise<void> | null = null;
  /** A pass was asked for while one ran: run one more after it. */
  #manageAgain = false;
  #tempSeq = 0;
  /** Resolved once the loader's pass is over. */
  loaded: Promise<void>;

  constructor(config: CacheZoneConfig) {
    this.config = config;
    this.loaded = this.#load();
    this.start();
  }

  /** Starts the manager's timer where it runs (idempotent: a proxy started again in the same process). */
  start(): void {
    if (this.#timer !== null || !managesHere()) return;
    this.#timer = setInterval(() => void this.manage(), MANAGER_INTERVAL);
    this.#timer.unref();
  }

  /** The md5 of a key, as nginx names cache files. */
  static hash(key: string): string {
    return createHash('md5').update(key).digest('hex');
  }

  /** nginx's layout: `levels=1:2` puts c29...b7f54b2df7773722d382f4809d65029c in `c/29/` (from the end). */
  dirFor(hash: string): string {
    const parts: string[] = [this.config.path];
    let end = hash.length;
    for (const l of this.config.levels) {
      parts.push(hash.slice(end - l, end));
      end -= l;
    }
    return join(...parts);
  }

  fileFor(hash: string): string {
    return join(this.dirFor(hash), hash);
  }

  /** A temp name next to the entry (use_temp_path=off) or in `tempDir`; unique in this process. */
  tempFor(hash: string, tempDir: string | null): string {
    const name = `${hash}.${process.pid}.${++this.#tempSeq}`;
    return tempDir === null ? join(this.dirFor(hash), name) : join(tempDir, name);
  }

  /** Bytes the index knows of. */
  get size(): number {
    return this.#size;
  }

  get entries(): number {
    return this.#index.size;
  }

  /** The most keys the keys zone holds. */
  get maxKeys(): number {
    return Math.max(1, Math.floor(this.config.keysZoneSize * KEYS_PER_BYTE));
  }

  /** Counts one request for `hash`; true once it has been asked for `minUses` times (proxy_cache_min_uses). */
  countUse(hash: string, minUses: number): boolean {
    if (minUses <= 1) return true;
    const n = (this.#uses.get(hash) ?? 0) + 1;
    // Bounded like nginx's nodes: the oldest counts go first.
    if (!this.#uses.has(hash) && this.#uses.size >= this.maxKeys) this.#uses.delete(this.#uses.keys().next().value as string);
    this.#uses.set(hash, n);
    return n >= minUses;
  }

  /** A hit: the entry's last use is now (and, now and then, its file's mtime for the other processes). */
  used(hash: string, size: number): void {
    const now = Date.now();
    let e = this.#index.get(hash);
    if (e === undefined) {
      e = { size, used: now, touched: 0 };
      this.#add(hash, e);
    }
    e.used = now;
    if (now - e.touched > this.config.inactive / 10) {
      e.touched = now;
      const t = new Date(now);
      utimes(this.fileFor(hash), t, t).catch(ignore);
    }
  }

  /** An entry was written (renamed into place) by this process. */
  stored(hash: string, size: number): void {
    this.#uses.delete(hash);
    const now = Date.now();
    const old = this.#index.get(hash);
    if (old !== undefined) this.#size -= old.size;
    this.#index.delete(hash);
    this.#add(hash, { size, used: now, touched: now });
    this.counters.stores++;
    if (this.#overLimit() && managesHere()) void this.manage();
  }

  /** The entry's file is gone (removed by a manager, found missing). */
  forget(hash: string): void {
    const e = this.#index.get(hash);
    if (e === undefined) return;
    this.#size -= e.size;
    this.#index.delete(hash);
  }

  #add(hash: string, e: IndexEntry): void {
    this.#index.set(hash, e);
    this.#size += e.size;
  }

  #overLimit(): boolean {
    const { maxSize } = this.config;
    return (maxSize > 0 && this.#size > maxSize) || this.#index.size > this.maxKeys;
  }

  /** The loader: indexes every entry file under the directory (made if missing). */
  async #load(): Promise<void> {
    await mkdir(this.config.path, { recursive: true, mode: 0o700 }).catch(ignore);
    const seen = await this.#scan();
    for (const [hash, e] of seen) this.#add(hash, e);
  }

  /** Every entry file on disk, with its size and mtime; stale temp files are removed on the way. */
  async #scan(): Promise<Map<string, IndexEntry>> {
    const found = new Map<string, IndexEntry>();
    const now = Date.now();
    const dirs = [this.config.path];
    for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
      let names;
      try {
        names = await readdir(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const d of names) {
        const full = join(dir, d.name);
        if (d.isDirectory()) {
          dirs.push(full);
          continue;
        }
        if (ENTRY_NAME.test(d.name)) {
          const st = await stat(full).catch(() => null);
          if (st !== null) found.set(d.name, { size: st.size, used: st.mtimeMs, touched: st.mtimeMs });
        } else if (TEMP_NAME.test(d.name)) {
          const st = await stat(full).catch(() => null);
          if (st !== null && now - st.mtimeMs > STALE_TEMP_MS) await rm(full, { force: true }).catch(ignore);
        }
      }
    }
    return found;
  }

  /** One manager pass (also called by tests); concurrent calls share the pass in progress. */
  manage(): Promise<void> {
    if (this.#managing !== null) {
      // A pass is under way, and its scan of the disk may have missed what was just stored: one
      // more pass follows it (else an entry over max_size waits for the next interval).
      this.#manageAgain = true;
      return this.#managing;
    }
    this.#managing = this.#manage().finally(() => {
      this.#managing = null;
      if (this.#manageAgain) {
        this.#manageAgain = false;
        void this.manage();
      }
    });
    return this.#managing;
  }

  async #manage(): Promise<void> {
    await this.loaded;
    // The disk is the truth: the other processes' entries count too.
    const seen = await this.#scan();
    for (const [hash, e] of seen) {
      const mine = this.#index.get(hash);
      if (mine !== undefined && mine.used > e.used) e.used = mine.used;
    }
    this.#index.clear();
    this.#size = 0;
    for (const [hash, e] of seen) this.#add(hash, e);
    const now = Date.now();
    for (const [hash, e] of [...this.#index]) {
      if (now - e.used >= this.config.inactive) await this.#evict(hash);
    }
    if (!this.#overLimit() && !(await this.#lowOnDisk())) return;
    const byAge = [...this.#index].sort((a, b) => a[1].used - b[1].used);
    for (const [hash] of byAge) {
      if (!this.#overLimit() && !(await this.#lowOnDisk())) break;
      await this.#evict(hash);
    }
  }

  /** min_free: the file system holding the cache has less than this available. */
  async #lowOnDisk(): Promise<boolean> {
    if (this.config.minFree <= 0) return false;
    try {
      const s = await statfs(this.config.path);
      return s.bavail * s.bsize < this.config.minFree;
    } catch {
      return false;
    }
  }

  async #evict(hash: string): Promise<void> {
    await rm(this.fileFor(hash), { force: true }).catch(ignore);
    this.forget(hash);
    this.counters.evictions++;
  }

  /** Stops the manager's timer (the process is ending, or the zone left the config). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** The manager runs in one process: the only one, or worker 0. */
function managesHere(): boolean {
  const n = process.env[WORKER_INDEX_ENV];
  return n === undefined || n === '0';
}

function ignore(): void {}

/** Zones by `name path`: one per process, kept across reloads. */
const zones = new Map<string, CacheZone>();

/** The zone for a config, made (and loaded) on first use; a reload with new limits updates them in place. */
export function cacheZone(config: CacheZoneConfig): CacheZone {
  const id = `${config.name}\0${config.path}\0${config.levels.join(':')}`;
  let z = zones.get(id);
  if (z === undefined) {
    z = new CacheZone(config);
    zones.set(id, z);
  } else {
    z.config = config;
    z.start();
  }
  return z;
}

/** Every zone this process has opened (metrics). */
export function openZones(): readonly CacheZone[] {
  return [...zones.values()];
}
