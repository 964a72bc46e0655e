import { startProxy } from '../../src/index.js';
import type { AfterHook } from './temp.js';
import { DEFAULT_WAIT_MS, waitFor, withTimeout } from './wait.js';

/** What `startProxy` returns. */
export type ProxyHandle = Awaited<ReturnType<typeof startProxy>>;

/** Options for {@link startTestProxy}. */
export interface TestProxyOptions {
  /** Registers `stop()` with `t.after`, so cleanup runs even when the test fails. */
  t?: AfterHook;
  /** Where relative paths in the config resolve (a `tempDir(t).path`, say). */
  prefix?: string;
  /** Grace period `stop()` gives to `close()` before `destroy()`. @default 500 */
  graceMs?: number;
  /** Also copy error-log lines to stderr (or set SLUICE_TEST_LOG=1). @default false */
  echoErrors?: boolean;
}

/** A proxy started for a test, see {@link startTestProxy}. */
export interface TestProxy extends Pick<ProxyHandle, 'listeners' | 'close' | 'destroy'> {
  /** The handle itself, for anything not mirrored here. */
  readonly handle: ProxyHandle;
  /** The first listener's port. */
  readonly port: number;
  /** An address a client can dial for the first listener (a wildcard address becomes loopback). */
  readonly host: string;
  /** `http://HOST:PORT` + `path` for the first listener. */
  url(path?: string): string;
  /** `ws://HOST:PORT` + `path` for the first listener. */
  wsUrl(path?: string): string;
  /** Every error-log line so far (captured through the `logger` option), without line ends. */
  readonly errorLines: string[];
  /** Resolves with the first error-log line matching `pattern` (already seen or still to come). */
  waitForErrorLine(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /**
   * Graceful close (up to `graceMs`, plus a short moment for tunnels to answer their 1001), then
   * destroy — the destroy always runs. Idempotent; a close failure is rethrown after the destroy.
   */
  stop(): Promise<void>;
}

/**
 * How long `stop()` lets tunnels still open after the grace period answer their close 1001 before
 * it destroys them. The proxy itself waits up to GOING_AWAY_GRACE_MS (2 s) for that; in a test's
 * cleanup the peers are fixtures that often never answer (a raw upstream holding its half-open
 * side, a client the test has not closed yet), and shutdown is not what is being tested: tests of
 * it call `handle.close()` themselves.
 */
const STOP_GOING_AWAY_MS = 100;

function dialHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '*') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Starts the proxy from inline config text with its error log captured, for integration tests.
 * Listen on port 0 in the config (`listen 127.0.0.1:0;`); `port` tells the real one. A config with
 * problems rejects with the library's `ConfigError` and leaves nothing running.
 *
 * @example
 * const backend = await startHttpBackend();
 * t.after(() => backend.close());
 * const proxy = await startTestProxy(`
 *   events {}
 *   http { server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }`, { t });
 * const res = await fetch(proxy.url('/'));
 */
export async function startTestProxy(configText: string, options: TestProxyOptions = {}): Promise<TestProxy> {
  const errorLines: string[] = [];
  const echo = options.echoErrors === true || process.env['SLUICE_TEST_LOG'] === '1';
  const logger = {
    write(text: string): void {
      for (const line of text.split('\n')) if (line !== '') errorLines.push(line);
      if (echo) process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
  const handle = await startProxy({
    text: configText,
    logger,
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
  });
  const first = handle.listeners[0];
  if (first === undefined) {
    handle.destroy();
    throw new Error('the test proxy config has no listener; add `listen 127.0.0.1:0;` to a server block');
  }
  const host = dialHost(first.host);
  const graceMs = options.graceMs ?? 500;
  let stopping: Promise<void> | null = null;
  const proxy: TestProxy = {
    handle,
    listeners: handle.listeners,
    close: (ms?: number) => handle.close(ms),
    destroy: () => handle.destroy(),
    port: first.port,
    host,
    url: (path = '/') => `http://${host}:${first.port}${path}`,
    wsUrl: (path = '/') => `ws://${host}:${first.port}${path}`,
    errorLines,
    waitForErrorLine: (pattern, timeoutMs = DEFAULT_WAIT_MS) => waitFor(
      () => errorLines.find((line) => (typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line))),
      { timeoutMs, what: `an error-log line matching ${String(pattern)}` },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; error log so far:\n${errorLines.join('\n')}`);
    }),
    stop() {
      stopping ??= (async () => {
        const closing = handle.close(graceMs);
        closing.catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([closing, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs + STOP_GOING_AWAY_MS); })]);
        } finally {
          clearTimeout(timer);
          handle.destroy();
        }
        // What close() still does after the destroy (closing the log files) is quick.
        await withTimeout(closing, DEFAULT_WAIT_MS, 'the proxy to close');
      })();
      return stopping;
    },
  };
  options.t?.after(() => proxy.stop());
  return proxy;
}
