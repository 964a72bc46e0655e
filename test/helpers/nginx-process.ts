import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { unusedPort } from './ports.js';
import { startTestProxy } from './proxy.js';
import type { AfterHook } from './temp.js';
import { tempDir } from './temp.js';
import { waitFor, withTimeout } from './wait.js';

/** Where Debian installs nginx (not on every user's PATH). */
export const NGINX = '/usr/sbin/nginx';

/** A running nginx, see {@link startNginx}. */
export interface NginxProcess {
  /** The prefix: its error log is `logs/error.log` there. */
  readonly dir: string;
  /** Every line of its error log so far. */
  errorLog(): string;
}

function listening(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * The installed nginx in the foreground with one process, `main` lines and the `http` block in a
 * prefix of its own (error log at info), stopped by `t.after`. Its listen addresses must be
 * written in the text (pick ports with `unusedPort()`); it resolves once `waitPort` accepts.
 * Fails the test when nginx is missing: the e2e suites compare with it.
 */
export async function startNginx(t: AfterHook, http: string, waitPort: number, main = '', waitHost = '127.0.0.1'): Promise<NginxProcess> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: the e2e suites compare Sluice with nginx (apt-get install nginx-light)`);
  const dir = tempDir(t, 'sluice-nginx-').path;
  mkdirSync(join(dir, 'logs'));
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, `daemon off;\nmaster_process off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'logs', 'error.log')} info;\n${main}\n`
    + `events {}\nhttp {\naccess_log off;\n${http}\n}\n`);
  const child = spawn(NGINX, ['-p', dir, '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'nginx to exit').catch(() => child.kill('SIGKILL'));
  });
  await waitFor(async () => (child.exitCode !== null ? 'exited' : (await listening(waitPort, waitHost)) ? 'up' : null), { what: 'nginx to listen' })
    .then((state) => {
      if (state === 'exited') throw new Error(`nginx exited: ${stderr}`);
    });
  const errorLog = join(dir, 'logs', 'error.log');
  return { dir, errorLog: () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '') };
}

/**
 * nginx and Sluice from one `http` block, which listens on the port it is given (nginx gets a
 * free one, Sluice 0): the ports to send the same requests to, and Sluice's listeners.
 */
export async function nginxAndSluice(t: AfterHook, http: (port: number) => string): Promise<{ nginx: number; sluice: number; listeners: readonly { port: number }[] }> {
  const nginxPort = await unusedPort();
  await startNginx(t, http(nginxPort), nginxPort);
  const sluice = await startTestProxy(`events {}\nhttp {\n${http(0)}\n}`, { t });
  return { nginx: nginxPort, sluice: sluice.port, listeners: sluice.listeners };
}
