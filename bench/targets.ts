/**
 * The systems under test, each started fresh on loopback in front of the echo backend, with the
 * same routing: one location, one upstream with keep-alive connections for plain HTTP, the classic
 * WebSocket lines (Upgrade/Connection through a map), hour-long timeouts so idle tunnels stay
 * open, and no access log.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, removeOnExit, startChild } from './processes.js';
import type { Child } from './processes.js';
import type { ToolName, ToolStatus } from './tools.js';

export const TARGET_NAMES = [
  'direct', 'sluice', 'sluice-io-other', 'sluice-ref', 'sluice-ts-tunnel', 'sluice-node-front', 'sluice-v8-default', 'sluice-v8-small', 'sluice-jit-default', 'sluice-workers', 'sluice-workers-jit-default', 'sluice-workers-rr', 'sluice-reuseport', 'sluice-least-conn', 'sluice-fleet',
  'sluice-c-handshake', 'sluice-c-handshake-c-route',
  'sluice-undici', 'sluice-node-client',
  'nginx', 'nginx-tuned', 'haproxy', 'http-proxy',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** Targets that cannot run yet, and why (reported as notes, never as numbers). */
export const NOT_AVAILABLE: Partial<Record<TargetName, string>> = {};

/** Worker processes of the `sluice-workers` target: one per core of this 2-core machine. */
export const SLUICE_WORKERS = 2;

/** The tool each target needs. */
export const NEEDS: Partial<Record<TargetName, ToolName>> = { nginx: 'nginx', 'nginx-tuned': 'nginx', haproxy: 'haproxy', 'sluice-fleet': 'redis-server' };

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SLUICE_CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
/**
 * `sluice-ref`: the `sluice` target run from another build (`SLUICE_BENCH_REF=DIR`, a checkout
 * with its dist/ and native/build/), interleaved with this one's to compare two commits in one run.
 */
function refCli(): string {
  const dir = process.env.SLUICE_BENCH_REF;
  if (dir === undefined || dir === '') throw new Error('sluice-ref needs SLUICE_BENCH_REF=DIR, a built checkout to compare with');
  return join(dir, 'dist/src/cli/main.js');
}
const HTTP_PROXY_JS = fileURLToPath(new URL('./http-proxy-server.js', import.meta.url));
/** The C handshake experiment (bench/experiments/c-handshake, not compiled by tsc: run from the source tree). */
const C_HANDSHAKE_DIR = join(REPO_ROOT, 'bench/experiments/c-handshake');

/** Upstream-facing timeouts: long enough that no idle tunnel closes during a run. */
const TUNNEL_TIMEOUT = '3600s';
/** The most tunnels any scenario holds; the proxies' connection limits sit above it. */
export const MAX_TUNNELS = 9_900;

export interface RunningTarget {
  readonly name: TargetName;
  readonly port: number;
  /** The process whose CPU, memory and descriptors are measured (with its descendants); null for `direct`. */
  readonly pid: number | null;
  /** Null while it runs; otherwise how it ended and the last lines it printed. */
  crashed(): string | null;
  stop(): Promise<void>;
}

function crashReport(child: Child): () => string | null {
  return () => (child.exited ? `${child.name} exited during the measurement: ${child.tail(5).replace(/\n/g, ' | ')}` : null);
}

/**
 * The cache scenario's location (`/cached/`, the same backend path without the prefix): the
 * `bench` proxy_cache zone, 200s kept ten minutes, and `X-Cache-Status` to check for hits.
 */
function cacheLocation(): string {
  return `
    location /cached/ {
      proxy_pass http://echo/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status $upstream_cache_status;
    }`;
}

/**
 * `SLUICE_BENCH_NO_CACHE=1`: every target's config as before the cache scenario (no
 * proxy_cache_path, proxy_temp_path or /cached/ location), so that a `sluice-ref` build from
 * before proxy_cache (31755f6, say) runs the same config as this one; the cache scenario then
 * has nothing to measure.
 */
const NO_CACHE = process.env.SLUICE_BENCH_NO_CACHE === '1';

/** The cache directory of a target's temp dir, writable by nginx's unprivileged worker. */
function cacheDir(dir: string): string {
  const d = join(dir, 'cache');
  mkdirSync(d, { mode: 0o777 });
  chmodSync(d, 0o777);
  return d;
}

/**
 * The routing every target shares. `balancing` (the Sluice balancing targets only) replaces the
 * single server line with a method and four lines naming the one backend, so that each pick
 * compares four servers.
 */
function nginxStyleHttp(backendPort: number, listen: string, extra: string, cache: string, balancing: string | null = null): string {
  const servers = balancing === null
    ? `server 127.0.0.1:${backendPort};`
    : `${balancing}\n${Array.from({ length: BALANCED_SERVERS }, () => `    server 127.0.0.1:${backendPort};`).join('\n')}`;
  return `${NO_CACHE ? '' : `
  proxy_cache_path ${cache} levels=1:2 keys_zone=bench:10m;`}
  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      '';
  }
  upstream echo {
    ${servers}
    keepalive 64;
  }
  server {
    listen ${listen};
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout ${TUNNEL_TIMEOUT};
      proxy_send_timeout ${TUNNEL_TIMEOUT};${extra}
    }${NO_CACHE ? '' : cacheLocation()}
  }`;
}

/** Server lines of the balancing targets (`sluice-least-conn`, `sluice-fleet`). */
const BALANCED_SERVERS = 4;

/** How a Sluice target's config differs from the plain one. */
export interface SluiceConfigOptions {
  /** worker_processes. @default 1 */
  readonly workers?: number;
  /** Lines in the location (the guardrails scenario's). */
  readonly location?: string;
  /** `least_conn;` or `least_conn fleet;` over four server lines. */
  readonly balancing?: string | null;
  /** Main-context lines (the `fleet` directive). */
  readonly main?: string;
  /** A fixed port with `reuseport` (a socket per worker); null: port 0 (any free port). */
  readonly reusePort?: number | null;
  /** `accept_mutex` written out: on, the primary hands connections to the workers in turn; null: the default (off). @default null */
  readonly acceptMutex?: boolean | null;
}

/** The Sluice targets' config. */
export function sluiceConfig(backendPort: number, dir: string, { workers = 1, location = '', balancing = null, main = '', reusePort = null, acceptMutex = null }: SluiceConfigOptions = {}): string {
  const listen = reusePort === null ? '127.0.0.1:0' : `127.0.0.1:${reusePort} reuseport`;
  return `# generated by the Sluice benchmark
worker_processes ${workers};
${main}events { worker_connections 20000;${acceptMutex === null ? '' : ` accept_mutex ${acceptMutex ? 'on' : 'off'};`} }
http {
  access_log off;${NO_CACHE ? '' : `
  proxy_temp_path ${dir}/proxy_temp;`}${nginxStyleHttp(backendPort, listen, location === '' ? '' : `\n      ${location}`, cacheDir(dir), balancing)}
}
`;
}

/** A redis-server for `sluice-fleet`, on a free port, saving nothing. */
async function startRedisServer(bin: string, dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = startChild('redis-server', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { cwd: dir });
  try {
    await child.waitForPort(port, 15_000);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { port, stop: () => child.stop() };
}

export function nginxConfig(backendPort: number, port: number, dir: string, tuned: boolean): string {
  const extra = tuned
    ? `
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
      proxy_busy_buffers_size 128k;`
    : '';
  return `# generated by the Sluice benchmark
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;${nginxStyleHttp(backendPort, `127.0.0.1:${port}`, extra, cacheDir(dir))}
}
`;
}

export function haproxyConfig(backendPort: number, port: number): string {
  return `# generated by the Sluice benchmark
global
  nbthread 1
  maxconn ${MAX_TUNNELS}

defaults
  mode http
  maxconn ${MAX_TUNNELS}
  timeout connect 5s
  timeout client ${TUNNEL_TIMEOUT}
  timeout server ${TUNNEL_TIMEOUT}
  timeout tunnel ${TUNNEL_TIMEOUT}
  timeout http-request 10s
  timeout http-keep-alive 60s

cache bench
  total-max-size 64
  max-object-size 1048576
  max-age 600

frontend fe
  bind 127.0.0.1:${port}
  use_backend be_cached if { path_beg /cached/ }
  default_backend be

backend be
  server echo 127.0.0.1:${backendPort}

# The cache scenario: HAProxy's small-object cache in front of the same backend path. HAProxy
# stores only a response that says how long it is fresh: the max-age stands for the ten minutes
# proxy_cache_valid gives nginx and Sluice.
backend be_cached
  http-request cache-use bench
  http-request set-path %[path,regsub(^/cached/,/)]
  http-response set-header Cache-Control max-age=600 if !{ res.cache_hit }
  http-response cache-store bench
  http-response set-header X-Cache-Status HIT if { res.cache_hit }
  server echo 127.0.0.1:${backendPort}
`;
}

/**
 * Extra node options for the Sluice targets only, for profiling a run
 * (`SLUICE_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`); never set for reported runs.
 */
function sluiceNodeArgs(): string[] {
  const raw = process.env.SLUICE_BENCH_NODE_ARGS ?? '';
  return raw.split(/\s+/).filter((a) => a !== '');
}

function withTempDir(child: Child, remove: () => void | Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await child.stop();
    } finally {
      await remove();
    }
  };
}

/** A Node script as a target: it prints `listening on 127.0.0.1:PORT` once it accepts. */
async function startNodeTarget(name: TargetName, args: string[], ipc: boolean, timeoutMs: number): Promise<RunningTarget> {
  const child = startChild(name, process.execPath, args, { ipc });
  const stop = (): Promise<void> => child.stop();
  try {
    const m = await child.waitForLine(/listening on 127\.0\.0\.1:(\d+)/, timeoutMs);
    return { name, port: Number(m[1]), pid: child.pid, crashed: crashReport(child), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Starts `name` in front of the backend on `backendPort`; resolves once it accepts connections. */
export async function startTarget(
  name: TargetName,
  backendPort: number,
  tools: Partial<Record<ToolName, ToolStatus>>,
  /** Lines added to a Sluice target's location (the guardrails scenario). */
  sluiceLocation = '',
): Promise<RunningTarget> {
  const startTimeout = 15_000;
  switch (name) {
    case 'direct':
      return { name, port: backendPort, pid: null, crashed: () => null, stop: async () => {} };
    case 'sluice':
    case 'sluice-ref':
    case 'sluice-io-other':
    case 'sluice-ts-tunnel':
    case 'sluice-node-front':
    case 'sluice-v8-default':
    case 'sluice-v8-small':
    case 'sluice-jit-default':
    case 'sluice-workers-jit-default':
    case 'sluice-undici':
    case 'sluice-node-client':
    case 'sluice-least-conn':
    case 'sluice-fleet':
    case 'sluice-workers':
    case 'sluice-workers-rr':
    case 'sluice-reuseport': {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
      let remove: () => void | Promise<void> = removeOnExit(dir);
      const conf = join(dir, 'sluice.conf');
      let main = '';
      if (name === 'sluice-fleet') {
        // least_conn fleet against least_conn (sluice-least-conn): what a fleet costs a handshake.
        const bin = tools['redis-server']?.bin;
        if (!bin) throw new Error(tools['redis-server']?.note ?? 'redis-server is not available');
        const redis = await startRedisServer(bin, dir);
        const removeDir = remove;
        remove = async () => {
          await redis.stop().finally(removeDir);
        };
        main = `fleet redis://127.0.0.1:${redis.port} name=bench;\n`;
      }
      const balancing = name === 'sluice-fleet' ? 'least_conn fleet;' : name === 'sluice-least-conn' ? 'least_conn;' : null;
      // The primary and its workers are one process tree: procfs sums them as for nginx.
      // sluice-workers: the default (`accept_mutex off`): each worker accepts on the shared socket,
      // within its share of the load; sluice-workers-rr: `accept_mutex on`, the primary hands the
      // workers connections in turn; sluice-reuseport: `listen ... reuseport` (a socket each where
      // Node has reusePort, else the shared one). The last two only run when named.
      const reusePort = name === 'sluice-reuseport' ? await freePort() : null;
      const inTurn = name === 'sluice-workers-rr';
      const workers = name === 'sluice-workers' || name === 'sluice-workers-jit-default' || inTurn || reusePort !== null ? SLUICE_WORKERS : 1;
      writeFileSync(conf, sluiceConfig(backendPort, dir, { workers, location: sluiceLocation, balancing, main, reusePort, acceptMutex: inTurn ? true : null }));
      // sluice-node-front: one process with Node's HTTP server reading every connection (no lean
      // front end), for the side-by-side comparison in docs/benchmarks.md; only run when named.
      // sluice-ts-tunnel: every tunnel in the TypeScript relay (the guardrails scenario runs it beside `sluice`).
      // sluice-v8-default: V8's own memory policy (cli/memory-settings.ts off); sluice-v8-small:
      // the young generation kept at 1 MiB (the policy before the idle give-back); only run when named.
      // sluice-undici / sluice-node-client: the upstream client undici (measurement only, a
      // devDependency) or http.request instead of the lean one; only run when named.
      // sluice-io-other: the addon's I/O thread under SCHED_OTHER instead of SCHED_BATCH; only run when named.
      // sluice-jit-default / sluice-workers-jit-default: V8's own tier-up thresholds (cli/jit-settings.ts
      // off), one process or two workers; only run when named.
      const env = name === 'sluice-io-other' ? { ...process.env, SLUICE_IO_SCHED: 'other' }
        : name === 'sluice-node-front' ? { ...process.env, SLUICE_FRONT: 'node' }
        : name === 'sluice-ts-tunnel' ? { ...process.env, SLUICE_NATIVE: 'off' }
          : name === 'sluice-v8-default' ? { ...process.env, SLUICE_V8_MEMORY: 'default' }
            : name === 'sluice-v8-small' ? { ...process.env, SLUICE_V8_MEMORY: 'small' }
              : name === 'sluice-jit-default' || name === 'sluice-workers-jit-default' ? { ...process.env, SLUICE_V8_JIT: 'default' }
              : name === 'sluice-undici' ? { ...process.env, SLUICE_UPSTREAM_CLIENT: 'undici' }
                : name === 'sluice-node-client' ? { ...process.env, SLUICE_UPSTREAM_CLIENT: 'node' } : process.env;
      const child = startChild(name, process.execPath, [...sluiceNodeArgs(), name === 'sluice-ref' ? refCli() : SLUICE_CLI, '-c', conf], { cwd: dir, env });
      const stop = withTempDir(child, remove);
      try {
        const m = await child.waitForLine(/listening on 127\.0\.0\.1:(\d+)/, startTimeout);
        return { name, port: Number(m[1]), pid: child.pid, crashed: crashReport(child), stop };
      } catch (e) {
        await stop();
        throw e;
      }
    }
    case 'nginx':
    case 'nginx-tuned': {
      const bin = tools.nginx?.bin;
      if (!bin) throw new Error(tools.nginx?.note ?? 'nginx is not available');
      const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-nginx-'));
      const remove = removeOnExit(dir);
      chmodSync(dir, 0o755); // the worker runs as an unprivileged user when nginx starts as root
      const port = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(backendPort, port, dir, name === 'nginx-tuned'));
      const child = startChild(name, bin, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { cwd: dir });
      const stop = withTempDir(child, remove);
      try {
        await child.waitForPort(port, startTimeout);
        return { name, port, pid: child.pid, crashed: crashReport(child), stop };
      } catch (e) {
        await stop();
        throw e;
      }
    }
    case 'haproxy': {
      const bin = tools.haproxy?.bin;
      if (!bin) throw new Error(tools.haproxy?.note ?? 'haproxy is not available');
      const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-haproxy-'));
      const remove = removeOnExit(dir);
      const port = await freePort();
      const conf = join(dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(backendPort, port));
      const child = startChild(name, bin, ['-f', conf, '-db'], { cwd: dir });
      const stop = withTempDir(child, remove);
      try {
        await child.waitForPort(port, startTimeout);
        return { name, port, pid: child.pid, crashed: crashReport(child), stop };
      } catch (e) {
        await stop();
        throw e;
      }
    }
    case 'sluice-c-handshake':
    case 'sluice-c-handshake-c-route': {
      // The experiment of docs/benchmarks.md "The handshake in C": WebSocket handshakes only, its
      // own addon (node bench/experiments/c-handshake/build.mjs); only run when named.
      if (!existsSync(join(C_HANDSHAKE_DIR, 'build/Release/c_handshake.node'))) {
        throw new Error(`${name} needs its addon: node bench/experiments/c-handshake/build.mjs`);
      }
      const route = name === 'sluice-c-handshake' ? 'js' : 'c';
      return startNodeTarget(name, [join(C_HANDSHAKE_DIR, 'server.mjs'), '--backend', `127.0.0.1:${backendPort}`, '--route', route], false, startTimeout);
    }
    case 'http-proxy':
      return startNodeTarget(name, [HTTP_PROXY_JS, String(backendPort)], true, startTimeout);
  }
}

const ECHO_JS = fileURLToPath(new URL('./echo-backend.js', import.meta.url));

export interface Backend {
  readonly port: number;
  readonly pid: number;
  readonly bufferutil: string;
  stop(): Promise<void>;
}

export async function startBackend(): Promise<Backend> {
  const child = startChild('echo-backend', process.execPath, [ECHO_JS, '127.0.0.1'], { ipc: true });
  try {
    const m = await child.waitForLine(/listening on 127\.0\.0\.1:(\d+) \(bufferutil (\w+)\)/, 15_000);
    return { port: Number(m[1]), pid: child.pid, bufferutil: m[2]!, stop: () => child.stop() };
  } catch (e) {
    await child.stop();
    throw e;
  }
}
