/**
 * `daemon on`: the command line starts Sluice again as a detached process in a session of its
 * own (setsid), with no terminal on its standard streams, and returns once that process serves
 * (after its listeners and pid file exist, as nginx returns after binding) or fails, with its
 * start-up line or its errors. The detached process reports over an IPC channel it closes once
 * it is up; what it logs afterwards goes to its error log (stderr, the default, is /dev/null).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** Set in the detached process. */
export const DAEMON_CHILD_ENV = 'SLUICE_DAEMON_CHILD';

/** How long the command line waits for the detached process to say it serves. */
const READY_WAIT_MS = 60_000;

type DaemonMessage = { readonly sluice: 'daemon-ready'; readonly line: string } | { readonly sluice: 'daemon-failed'; readonly lines: readonly string[] };

export function isDaemonChild(): boolean {
  return process.env[DAEMON_CHILD_ENV] === '1';
}

/**
 * Runs this command again detached and waits for it. Resolves with the exit code for the
 * command line: 0 once the daemon serves, 1 if it failed; `say` writes whole lines to stderr (the
 * daemon's start-up line, or its errors).
 */
export function daemonize(say: (line: string) => void): Promise<number> {
  const devNull = openSync('/dev/null', 'r+');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: [devNull, devNull, devNull, 'ipc'],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  closeSync(devNull);
  return new Promise<number>((resolve) => {
    let settled = false;
    const done = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    const timer = setTimeout(() => {
      say(`sluice: [emerg] the daemon process ${child.pid ?? ''} did not start within ${READY_WAIT_MS / 1000}s`);
      done(1);
    }, READY_WAIT_MS);
    child.on('message', (m: DaemonMessage) => {
      if (m.sluice === 'daemon-ready') {
        say(m.line);
        done(0);
      } else if (m.sluice === 'daemon-failed') {
        for (const line of m.lines) say(line);
        done(1);
      }
    });
    child.on('error', (e) => {
      say(`sluice: [emerg] cannot start the daemon process: ${e.message}`);
      done(1);
    });
    // Its messages are all read once its end of the channel is closed (it exited, or gave up
    // before saying anything).
    let exit = 'it closed its channel';
    child.on('exit', (code, signal) => void (exit = signal ?? `code ${code ?? 0}`));
    child.on('disconnect', () => {
      setImmediate(() => {
        if (settled) return;
        say(`sluice: [emerg] the daemon process exited before it served (${exit})`);
        done(1);
      });
    });
  });
}

/** In the detached process: the lines to give the command line if the start fails. */
const collected: string[] = [];

export function collectForDaemonParent(line: string): void {
  if (isDaemonChild() && process.connected) collected.push(line);
}

/** In the detached process: it serves; the command line prints `line` and returns 0. */
export function reportDaemonReady(line: string): void {
  if (!isDaemonChild() || !process.connected) return;
  process.send?.({ sluice: 'daemon-ready', line } satisfies DaemonMessage, () => process.disconnect());
}

/** In the detached process: it could not start; the command line prints what it said. */
export function reportDaemonFailed(): Promise<void> {
  if (!isDaemonChild() || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    process.send?.({ sluice: 'daemon-failed', lines: collected } satisfies DaemonMessage, () => resolve());
  });
}
