// The declarations name Node's types (Buffer, node:net, ...): this keeps a reference to them in
// dist/src/index.d.ts (preserve="true": tsc drops reference directives otherwise), so that a
// TypeScript project compiles against Sluice without `"types": ["node"]` (TypeScript 6 and later
// load no @types package by default); it needs @types/node installed.
/// <reference types="node" preserve="true" />
/**
 * Sluice as a library: start a proxy from nginx-style config text or a file, get a handle.
 *
 * ```ts
 * import { startProxy } from 'sluice';
 * const proxy = await startProxy({ text: 'events {} http { server { listen 127.0.0.1:0; location / { proxy_pass http://127.0.0.1:8010; } } }' });
 * console.log(proxy.listeners[0].port);
 * await proxy.close();
 * ```
 */
import { loadConfig, formatProblem, problemText } from './config/load.js';
import type { LoadOptions } from './config/load.js';
import type { Config, ConfigProblem, LogLevel } from './config/types.js';
import { ProxyServer, ShuttingDownError } from './server/proxy-server.js';
import type { ListenerInfo, ReloadResult } from './server/proxy-server.js';
import { events } from './observability/events.js';
import { RELOAD_FAILED } from './observability/process-notices.js';
import type { LogSink } from './observability/log-files.js';
import type { DrainImpact } from './server/orphans.js';
import type { ProxyStats } from './observability/stats-collector.js';
import type { SessionSync, SharedSession } from './server/tls-session-cache.js';
import type { LimitStore } from './limits/limit-store.js';

export type { Config, ConfigProblem } from './config/types.js';
export type { ListenerInfo, ReloadResult } from './server/proxy-server.js';
export type { LogSink } from './observability/log-files.js';
export type { DrainImpact } from './server/orphans.js';
export type { SessionSync, SharedSession } from './server/tls-session-cache.js';
export { loadConfig, formatProblem } from './config/load.js';
export { events } from './observability/events.js';
export { startEchoServer } from './echo/echo-server.js';
export { SLUICE_VERSION } from './core/version.js';
export type { ProxyStats } from './observability/stats-collector.js';
export type { StatsSnapshot } from './observability/stats.js';
export { mergeSnapshots } from './observability/stats.js';
export { renderPrometheus } from './observability/metrics.js';

/** Thrown by startProxy when the config has problems; `problems` lists every one. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => formatProblem(p) + (p.hint ? `\n  hint: ${p.hint}` : '')).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface StartOptions {
  /** Config text (nginx dialect). */
  readonly text?: string;
  /** Path of a config file (used when `text` is absent, and as the name in messages). */
  readonly file?: string;
  /** Where relative paths resolve; default: the config file's directory. */
  readonly prefix?: string;
  /** Extra main-context directives, like nginx's `-g`. */
  readonly globalDirectives?: string;
  /** Receives error-log lines that would go to stderr. */
  readonly logger?: LogSink;
  /** 32 bytes that sign sticky cookie ids; default: random per process (worker processes share one). */
  readonly stickySecret?: Buffer;
  /** Receives the sessions stored in a shared `ssl_session_cache`, for the other processes (see `addSharedSession`). */
  readonly sessionSync?: SessionSync;
  /** Where limit zones are counted (a worker process: its primary); default: this process's memory. */
  readonly limitStore?: LimitStore;
  /** The files the `ssl_*` directives name, as another process read them (`Config.files`): used instead of the disk. */
  readonly files?: Config['files'];
  /**
   * Whether `reload()` logs its own `reconfiguring` and `reloaded FILE` notices (default true).
   * The daemon passes false: its signal handler (or its primary process) tells a reload's story
   * once, in nginx's master's words, and nginx's workers say nothing of it.
   */
  readonly announceReloads?: boolean;
}

function prereadMap(files: Config['files'] | undefined): Map<string, Buffer> | undefined {
  return files === undefined ? undefined : new Map(files.map((f) => [f.path, Buffer.from(f.data, 'base64')]));
}

/** A running proxy. */
export interface ProxyHandle {
  readonly config: Config;
  /** Each configured listen address with the port it is bound to (port 0 becomes a real port). */
  readonly listeners: readonly ListenerInfo[];
  /**
   * Reloads the config — the same file again, or new `text` — without dropping anything. On any
   * config problem it rejects with a ConfigError, logs every problem and keeps serving the old one.
   */
  reload(next?: { readonly text?: string; readonly files?: Config['files'] }): Promise<ReloadResult>;
  /** Reopens log files (after logrotate moved them). */
  reopenLogs(): void;
  /** Writes a line to the main error log (the daemon's process-level alerts go there). */
  log(level: LogLevel, message: string): void;
  /** A session another process stored in a shared `ssl_session_cache` (see `sessionSync`). */
  addSharedSession(session: SharedSession): void;
  /**
   * How many open tunnels a reload to a config with these upstream servers would drain
   * (`keptServers(config)` from `server/orphans.js`); changes nothing.
   */
  drainImpact(kept: ReadonlySet<string>): DrainImpact;
  /** The proxy's live statistics (a worker process merges the other workers' in through `setGatherer`). */
  readonly stats: ProxyStats;
  /**
   * Reports an error that escaped every request's safety net (an `uncaughtException`, say): the
   * main error log gets it at `alert` with its stack and `sluice_internal_errors_total` counts it.
   * The daemon calls this from its process handlers; a library user may do the same.
   */
  reportUncaught(err: unknown, origin: string): void;
  /** Graceful: stop accepting, let work in flight finish for up to `graceMs`, then close the rest. */
  close(graceMs?: number): Promise<void>;
  /** Abortive: close everything now. */
  destroy(): void;
}

/** Loads and validates a config (every problem at once), then starts serving it. */
export async function startProxy(opts: StartOptions): Promise<ProxyHandle> {
  const load: LoadOptions = {};
  if (opts.text !== undefined) load.text = opts.text;
  if (opts.file !== undefined) load.file = opts.file;
  if (opts.prefix !== undefined) load.prefix = opts.prefix;
  if (opts.globalDirectives !== undefined) load.globalDirectives = opts.globalDirectives;
  const preread = prereadMap(opts.files);
  const result = await loadConfig(preread === undefined ? load : { ...load, preread });
  if (!result.ok) throw new ConfigError(result.problems);
  const server = await ProxyServer.start(result.config, { logger: opts.logger, stickySecret: opts.stickySecret, sessionSync: opts.sessionSync, limitStore: opts.limitStore });
  let current = result.config;
  const announce = opts.announceReloads !== false;
  return {
    get config() {
      return current;
    },
    get listeners() {
      return server.listeners;
    },
    async reload(next) {
      const again: LoadOptions = { ...load };
      if (next?.text !== undefined) again.text = next.text;
      const files = prereadMap(next?.files);
      if (files !== undefined) again.preread = files;
      const log = server.runtime.mainLog;
      if (announce) log.log('notice', 'reconfiguring');
      const loaded = await loadConfig(again);
      if (!loaded.ok) {
        for (const p of loaded.problems) log.log(p.level ?? 'emerg', problemText(p));
        log.log('alert', RELOAD_FAILED);
        if (events.reload.hasSubscribers) events.reload.publish({ ok: false, file: current.file, problems: loaded.problems.map(formatProblem), drained: 0, proxy: server });
        throw new ConfigError(loaded.problems);
      }
      // nginx logs a new configuration's warnings when it reads it (shown if error_log's level allows).
      for (const w of loaded.config.warnings) log.log('warn', problemText(w));
      try {
        const done = await server.reload(loaded.config);
        current = loaded.config;
        if (announce) log.log('notice', `reloaded ${current.file}: ${done.drained} tunnel(s) to removed servers${current.websocketDrain ? ' will be drained' : ' stay until they end'}`);
        if (events.reload.hasSubscribers) events.reload.publish({ ok: true, file: current.file, problems: [], drained: done.drained, proxy: server });
        return done;
      } catch (err) {
        if (err instanceof ShuttingDownError) throw err;
        log.log('emerg', `${(err as Error).message}; still serving the previous configuration`);
        if (events.reload.hasSubscribers) events.reload.publish({ ok: false, file: current.file, problems: [(err as Error).message], drained: 0, proxy: server });
        throw err;
      }
    },
    reopenLogs: () => server.files.reopen(),
    addSharedSession: (session) => server.tls.sessions.addShared(session),
    log: (level, message) => server.runtime.mainLog.log(level, message),
    drainImpact: (kept) => server.drainImpact(kept),
    get stats() {
      return server.stats;
    },
    reportUncaught: (err, origin) => server.reportUncaught(err, origin),
    close: (graceMs) => server.close(graceMs),
    destroy: () => server.destroy(),
  };
}
