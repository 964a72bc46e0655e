/**
 * Every process the harness starts is the leader of its own process group (nginx's master and
 * worker share one), is registered here, and is stopped by killing that group: on `stop()`, when
 * a cell ends, and on any exit of the harness (normal, error, SIGINT, SIGTERM, SIGHUP).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Removes `dir` when the harness exits, if nothing removed it before. */
export function removeOnExit(dir: string): () => void {
  tempDirs.add(dir);
  return () => {
    tempDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Kills every registered process group now (SIGKILL). Safe to call more than once. */
export function killAll(): void {
  for (const c of live) killGroup(c, 'SIGKILL');
  live.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

let hooked = false;

/** Installs the exit and signal hooks that kill every child group. Idempotent. */
export function installCleanupHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig} received, stopping every child process\n`);
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`bench: uncaught exception: ${e.stack ?? e.message}\n`);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`bench: unhandled rejection: ${(e as Error)?.stack ?? String(e)}\n`);
    killAll();
    process.exit(1);
  });
}

/** A started child: its pid (the group leader), the last lines it printed, and how to stop it. */
export class Child {
  readonly proc: ChildProcess;
  readonly name: string;
  readonly #lines: string[] = [];
  #exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly #exitWaiters: (() => void)[] = [];
  readonly #lineWaiters: ((line: string) => boolean)[] = [];

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    live.add(proc);
    const onChunk = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        this.#lines.push(line);
        if (this.#lines.length > 50) this.#lines.shift();
        for (let i = this.#lineWaiters.length - 1; i >= 0; i--) if (this.#lineWaiters[i]!(line)) this.#lineWaiters.splice(i, 1);
      }
    };
    proc.stdout?.on('data', onChunk);
    proc.stderr?.on('data', onChunk);
    proc.on('error', (e) => this.#lines.push(`spawn error: ${e.message}`));
    proc.on('exit', (code, signal) => {
      this.#exited = { code, signal };
      live.delete(proc);
      for (const w of this.#exitWaiters.splice(0)) w();
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get exited(): boolean {
    return this.#exited !== null;
  }

  /** The last lines it printed (stdout and stderr), for error messages. */
  tail(n = 8): string {
    return this.#lines.slice(-n).join('\n');
  }

  /** Resolves with the first capture of `pattern` in a printed line; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    for (const line of this.#lines) {
      const m = pattern.exec(line);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, m?: RegExpExecArray): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(m!);
      };
      const timer = setTimeout(() => finish(new Error(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      this.#lineWaiters.push((line) => {
        const m = pattern.exec(line);
        if (m) finish(null, m);
        return m !== null;
      });
      this.#exitWaiters.push(() => finish(new Error(`${this.name} exited (${JSON.stringify(this.#exited)}) before it was ready\n${this.tail()}`)));
    });
  }

  /** Resolves once `port` accepts a TCP connection; rejects on exit or timeout. */
  async waitForPort(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`${this.name} exited (${JSON.stringify(this.#exited)}) before it was ready\n${this.tail()}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: port ${port} not accepting within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when the leader is gone. Idempotent. */
  async stop(graceMs = 1000): Promise<void> {
    if (this.exited) {
      killGroup(this.proc, 'SIGKILL'); // stray group members (nginx workers)
      return;
    }
    const gone = new Promise<void>((r) => this.#exitWaiters.push(r));
    killGroup(this.proc, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.proc, 'SIGKILL'), graceMs);
    await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs + 2000))]);
    clearTimeout(timer);
    killGroup(this.proc, 'SIGKILL');
    live.delete(this.proc);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface StartOptions {
  readonly cwd?: string;
  /** Adds an IPC channel (node children that exit when the harness goes away). */
  readonly ipc?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Spawns `cmd` as the leader of a new process group, registered for cleanup. */
export function startChild(name: string, cmd: string, args: readonly string[], o: StartOptions = {}): Child {
  const stdio: StdioOptions = o.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const proc = spawn(cmd, args, { cwd: o.cwd, stdio, detached: true, env: o.env ?? process.env });
  return new Child(name, proc);
}

/** A free TCP port on 127.0.0.1 (for servers that cannot bind port 0 and report it). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
