import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import assert from 'node:assert/strict';
import { unusedPort } from './ports.js';
import { trackGroup } from './process-groups.js';
import { startTestProxy } from './proxy.js';
import { tempDir, type AfterHook } from './temp.js';
import { waitFor, withTimeout } from './wait.js';

/** The nginx end-to-end tests compare against (Debian's package). */
export const NGINX_BINARY = process.env['SLUICE_NGINX'] ?? '/usr/sbin/nginx';

/** An nginx started by {@link startNginx}. */
export interface RunningNginx {
  /** The port `listen` was given (the same that the config function received). */
  readonly port: number;
  /** The prefix directory (config, pid, error log, temp paths). */
  readonly dir: string;
  /** The error log so far. */
  errorLog(): string;
  /** Fast stop (SIGTERM to the master), then SIGKILL to the group if it lingers. Idempotent. */
  stop(): Promise<void>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts the installed nginx (for tests in test/e2e/ that compare Sluice with it) in its own
 * prefix directory with `http` as the body of `http {}`: `http(port)` must `listen
 * 127.0.0.1:PORT` (nginx cannot listen on port 0 and report it, so a free port is picked first).
 * The pid file, error log (level info), temp paths and `daemon off` are added; the access log is
 * off. Resolves once the port accepts connections; `t.after` stops it. A missing nginx fails the
 * test (end-to-end tests never skip).
 *
 * @example const ng = await startNginx(t, (port) => `server { listen 127.0.0.1:${port}; return 200; }`);
 */
export async function startNginx(t: AfterHook, http: (port: number) => string): Promise<RunningNginx> {
  assert.ok(existsSync(NGINX_BINARY), `nginx is missing at ${NGINX_BINARY}: this end-to-end test needs the Debian package "nginx-light" (or SLUICE_NGINX=PATH)`);
  const dir = tempDir(t, 'sluice-nginx-');
  // nginx started as root runs its workers as nobody: they must reach the prefix.
  chmodSync(dir.path, 0o755);
  const port = await unusedPort();
  const conf = dir.write('nginx.conf', `pid ${dir.join('nginx.pid')};
error_log ${dir.join('error.log')} info;
events {}
http {
  access_log off;
  client_body_temp_path ${dir.join('client_body')};
  proxy_temp_path ${dir.join('proxy_temp')};
${http(port)}
}
`);
  const child = spawn(NGINX_BINARY, ['-p', dir.path, '-c', conf, '-e', dir.join('error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  trackGroup(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await withTimeout(exited, 5_000, 'nginx to stop').catch(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      });
    })();
    return stopping;
  };
  t.after(stop);
  const errorLog = (): string => (existsSync(dir.join('error.log')) ? readFileSync(dir.join('error.log'), 'utf8') : '');
  const died = exited.then(() => {
    throw new Error(`nginx exited before it listened (${child.exitCode ?? child.signalCode}): ${stderr}${errorLog()}`);
  });
  died.catch(() => undefined);
  await Promise.race([waitFor(() => portOpen(port), { what: `nginx to listen on ${port}`, timeoutMs: 10_000, intervalMs: 50 }), died]);
  return { port, dir: dir.path, errorLog, stop };
}

/**
 * nginx and Sluice from one `http` block, which listens on the port it is given (nginx gets a
 * free one, Sluice 0): the ports to send the same requests to, and Sluice's listeners.
 */
export async function nginxAndSluice(t: AfterHook, http: (port: number) => string): Promise<{ nginx: number; sluice: number; listeners: readonly { port: number }[] }> {
  const nginx = await startNginx(t, http);
  const sluice = await startTestProxy(`events {}\nhttp {\n${http(0)}\n}`, { t });
  return { nginx: nginx.port, sluice: sluice.port, listeners: sluice.listeners };
}
