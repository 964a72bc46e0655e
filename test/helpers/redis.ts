import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { unusedPort } from './ports.js';
import { trackGroup } from './process-groups.js';
import { requireProgram } from './programs.js';
import { tempDir, type AfterHook } from './temp.js';
import { withTimeout } from './wait.js';

/** A redis-server (or Sentinel) started by {@link startRedis} / {@link startSentinel}. */
export interface RunningRedis {
  readonly port: number;
  /** `redis://[:PASSWORD@]127.0.0.1:PORT` (a Sentinel's: `redis-sentinel://127.0.0.1:PORT/MASTER`). */
  readonly url: string;
  /** What it printed (its log goes to stdout). */
  output(): string;
  /** One command, RESP-encoded on a new connection (independent of ioredis): the decoded reply. */
  command(...args: (string | number)[]): Promise<unknown>;
  /** Stops it (SIGTERM, SIGKILL after 5 s). Idempotent; `start()` brings it back on the same port. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after `stop()`), with no data (nothing is saved). */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that keeps its connections open but answers nothing (a hung one). */
  pause(): void;
  resume(): void;
}

/** A RESP reply: simple strings and bulk strings as text, integers as numbers, errors as Error. */
type Reply = string | number | null | Error | Reply[];

/** Decodes one RESP reply at `at` of `buf`: [reply, next offset], or null when incomplete. */
function decode(buf: Buffer, at: number): [Reply, number] | null {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('latin1', at + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[at]!)) {
    case '+': return [line, next];
    case '-': return [new Error(line), next];
    case ':': return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: Reply[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = decode(buf, pos);
        if (r === null) return null;
        items.push(r[0]);
        pos = r[1];
      }
      return [items, pos];
    }
    default: throw new Error(`not RESP: ${JSON.stringify(buf.toString('latin1', at, eol))}`);
  }
}

/** Sends one command on a new connection and resolves its reply (an error reply rejects). */
export function redisCommand(port: number, password: string | null, args: readonly (string | number)[], tls: { readonly ca: string } | null = null): Promise<Reply> {
  const encode = (a: readonly (string | number)[]): string => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(String(x))}\r\n${String(x)}\r\n`).join('')}`;
  return withTimeout(new Promise<Reply>((resolve, reject) => {
    const socket: Socket = tls === null ? connect(port, '127.0.0.1') : tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca: tls.ca });
    let buf = Buffer.alloc(0);
    const wanted = password === null ? 1 : 2;
    const replies: Reply[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let r = decode(buf, 0);
      while (r !== null) {
        replies.push(r[0]);
        buf = buf.subarray(r[1]);
        r = buf.length > 0 ? decode(buf, 0) : null;
      }
      if (replies.length >= wanted) {
        socket.destroy();
        const last = replies[wanted - 1]!;
        if (last instanceof Error) reject(last);
        else resolve(last);
      }
    });
    socket.write((password === null ? '' : encode(['AUTH', password])) + encode(args));
  }), 5_000, `redis ${String(args[0])}`);
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Runs redis-server with `args` until it prints `ready`, its output appended to `out`; a bind
 * failure (another test took the port between pick and bind) rejects.
 */
async function spawnRedis(binary: string, args: readonly string[], ready: RegExp, out: { text: string }): Promise<Spawned> {
  const from = out.text.length;
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  trackGroup(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onData = (c: Buffer): void => void (out.text += c.toString());
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await withTimeout(new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (ready.test(out.text.slice(from))) resolve();
    };
    child.stdout!.on('data', check);
    void exited.then(() => reject(new Error(`redis-server exited (${child.exitCode ?? child.signalCode}): ${out.text}`)));
  }), 10_000, 'redis-server to be ready');
  return { child, exited };
}

/**
 * The handle of a started redis-server: stop() (SIGTERM, SIGKILL to its group after 5 s, also
 * run by `t.after`) and start() again with `launch`.
 */
function running(t: AfterHook, first: Spawned, launch: () => Promise<Spawned>, info: { port: number; url: string; password: string | null; out: { text: string }; tls?: { ca: string } | null }): RunningRedis {
  let current: Spawned | null = first;
  const stop = async (): Promise<void> => {
    const s = current;
    if (s === null) return;
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
    await withTimeout(s.exited, 5_000, 'redis-server to stop').catch(() => {
      try {
        process.kill(-s.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    current = null;
  };
  // A paused Redis would not stop on SIGTERM.
  t.after(() => current?.child.kill('SIGCONT'));
  t.after(stop);
  return {
    port: info.port,
    url: info.url,
    output: () => info.out.text,
    command: (...args) => redisCommand(info.port, info.password, args, info.tls ?? null),
    stop,
    start: async () => {
      current ??= await launch();
    },
    pause: () => void current?.child.kill('SIGSTOP'),
    resume: () => void current?.child.kill('SIGCONT'),
  };
}

/**
 * Starts Debian's redis-server (an end-to-end test's program: fails, never skips, without it) on
 * 127.0.0.1 and a free port, saving nothing to disk; `t.after` stops it. With `password`, clients
 * must AUTH (requirepass); with `tls`, it speaks TLS only (`rediss://localhost:PORT`).
 *
 * @example const redis = await startRedis(t); ... fleet ${redis.url} name=a;
 */
export async function startRedis(t: AfterHook, opts: { password?: string; args?: readonly string[]; tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly ca: string } } = {}): Promise<RunningRedis> {
  const binary = requireProgram('redis-server', 'redis-server');
  const dir = tempDir(t, 'sluice-redis-');
  const out = { text: '' };
  let current: Spawned | null = null;
  let port = 0;
  const argsFor = (p: number): string[] => [
    ...(opts.tls === undefined ? ['--port', String(p)] : [
      '--port', '0', '--tls-port', String(p), '--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile,
      '--tls-ca-cert-file', opts.tls.caFile, '--tls-auth-clients', 'no',
    ]),
    '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path, '--daemonize', 'no',
    ...(opts.password === undefined ? [] : ['--requirepass', opts.password]), ...(opts.args ?? []),
  ];
  for (let tries = 0; current === null; tries++) {
    port = await unusedPort();
    try {
      current = await spawnRedis(binary, argsFor(port), /Ready to accept connections/, out);
    } catch (err) {
      if (tries >= 2 || !/Address already in use/.test(out.text)) throw err;
      current = null;
    }
  }
  const password = opts.password ?? null;
  const auth = password === null ? '' : `:${encodeURIComponent(password)}@`;
  // A TLS Redis is named by the host name its certificate has.
  const url = opts.tls === undefined ? `redis://${auth}127.0.0.1:${port}` : `rediss://${auth}localhost:${port}`;
  const tls = opts.tls === undefined ? null : { ca: opts.tls.ca };
  return running(t, current, () => spawnRedis(binary, argsFor(port), /Ready to accept connections/, out), { port, url, password, out, tls });
}

/**
 * Starts a Redis Sentinel (`redis-server FILE --sentinel`, in the redis-server package) watching
 * `master` under the name `masterName` (quorum 1); `t.after` stops it.
 */
export async function startSentinel(t: AfterHook, master: RunningRedis, masterName = 'mymaster'): Promise<RunningRedis> {
  const binary = requireProgram('redis-server', 'redis-server');
  const dir = tempDir(t, 'sluice-sentinel-');
  const out = { text: '' };
  const port = await unusedPort();
  // Sentinel rewrites its config file: it must be writable.
  const conf = dir.write('sentinel.conf', [
    `port ${port}`, 'bind 127.0.0.1', `dir ${dir.path}`, 'daemonize no',
    `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
    `sentinel down-after-milliseconds ${masterName} 1000`,
  ].join('\n') + '\n');
  const launch = (): Promise<Spawned> => spawnRedis(binary, [conf, '--sentinel'], /Sentinel ID is|monitor master/, out);
  return running(t, await launch(), launch, { port, url: `redis-sentinel://127.0.0.1:${port}/${masterName}`, password: null, out });
}
