import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { trackGroup } from './process-groups.js';
import type { AfterHook } from './temp.js';
import { once, waitFor, withTimeout } from './wait.js';

/** The repository root (helpers run from dist/test/helpers). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The built command line. */
export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** Generous: a child is a whole Node start-up (times the workers), on a loaded 2-core machine. */
export const CHILD_MS = 20_000;

type Child = ChildProcessByStdio<null, Readable, Readable>;

/** What `sluice -t -c FILE` prints on stderr when the config is good: nginx's two lines. */
export const okLines = (file: string): string =>
  `sluice: the configuration file ${file} syntax is ok\nsluice: configuration file ${file} test is successful\n`;

/** How a finished `sluice` child ended, and what it printed. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `sluice ARGS` to completion (killed after CHILD_MS) and collects its output.
 *
 * @example const res = await runCli(['-s', 'reload', '-c', conf], dir.path);
 */
export async function runCli(args: readonly string[], cwd = ROOT, env: Readonly<Record<string, string>> = {}): Promise<CliResult> {
  return runNode(MAIN, args, cwd, env);
}

/**
 * Runs `node SCRIPT ARGS` to completion (killed after CHILD_MS) and collects its output. `env`
 * adds to this process's environment; an undefined value removes that variable.
 */
export async function runNode(script: string, args: readonly string[], cwd = ROOT, env: Readonly<Record<string, string | undefined>> = {}): Promise<CliResult> {
  const childEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete childEnv[name];
  const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  try {
    const [code, signal] = await once(child, 'close', CHILD_MS) as [number | null, NodeJS.Signals | null];
    return { code, signal, stdout, stderr };
  } catch (error) {
    throw new Error(`node ${script} ${args.join(' ')}: ${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * A long-running `sluice` child in its own process group (so that its worker processes go with
 * it): output collected, and the whole group killed by `t.after` if still alive.
 */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly child: Child;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #done = false;

  /**
   * `env` is added to this process's environment (`NODE_OPTIONS` to preload a fault injector, say);
   * `user` runs the child as another user (the test runs as root: file permissions bind only others).
   */
  constructor(t: AfterHook, args: readonly string[], cwd: string, env: Readonly<Record<string, string>> = {}, user: { readonly uid: number; readonly gid: number } | null = null) {
    this.child = spawn(process.execPath, [MAIN, ...args], {
      cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env }, ...(user === null ? {} : { uid: user.uid, gid: user.gid }),
    });
    trackGroup(this.child);
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => void (this.stdout += d));
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => void (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.#done = true;
        resolve({ code, signal });
      });
    });
    this.child.on('error', () => undefined);
    t.after(async () => {
      // Workers of a primary that has exited would be gone already; a group kill covers the rest.
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // The group is gone.
      }
      if (!this.#done) await withTimeout(this.exited, CHILD_MS, 'a killed child to exit');
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Resolves with the first match of `pattern` in stdout or stderr; fails fast if the child exits first. */
  async output(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs = CHILD_MS): Promise<RegExpExecArray> {
    const found = await waitFor(() => pattern.exec(this[stream]) ?? (this.#done ? 'exited' : null), {
      timeoutMs, what: `${pattern} on the child's ${stream}`,
    }).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
    });
    if (found === 'exited') {
      // It may have printed the line just before exiting.
      const last = pattern.exec(this[stream]);
      if (last) return last;
      throw new Error(`the child exited before printing ${pattern}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
    }
    return found;
  }

  /** The start-up line's port (`listening on 127.0.0.1:PORT`). */
  async port(): Promise<number> {
    const m = await this.output('stderr', /^sluice: sluice\/\S+ running .+, listening on 127\.0\.0\.1:(\d+)/m);
    return Number(m[1]);
  }

  /** Waits (bounded) for the exit. */
  wait(timeoutMs = CHILD_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return withTimeout(this.exited, timeoutMs, 'the child to exit').catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
    });
  }

  /** Sends `signal` and waits (bounded) for the exit. */
  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.wait();
  }
}

/** A plain HTTP answer. */
export interface HttpAnswer {
  status: number;
  body: string;
}

/** Options for {@link httpGet}. */
export interface HttpGetOptions {
  /** The Host header. @default 127.0.0.1:PORT */
  host?: string;
  /** The address to connect to. @default '127.0.0.1' */
  address?: string;
  /** More request headers (lower-case names). */
  headers?: Readonly<Record<string, string>>;
  /** @default 10000 */
  timeoutMs?: number;
}

/** GET on a new connection (no keep-alive pool: each call is one connection the proxy accepts). */
export async function httpGet(port: number, path = '/', options: HttpGetOptions = {}): Promise<HttpAnswer> {
  const { status, body } = await httpGetWithHeaders(port, path, options);
  return { status, body };
}

/** {@link httpGet}, with the response headers. */
export function httpGetWithHeaders(port: number, path = '/', options: HttpGetOptions = {}): Promise<HttpAnswer & { headers: IncomingHttpHeaders }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const headers: Record<string, string> = { ...options.headers, connection: 'close' };
  if (options.host !== undefined) headers['host'] = options.host;
  return new Promise((resolve, reject) => {
    const req = request({ host: options.address ?? '127.0.0.1', port, path, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.end();
  });
}
