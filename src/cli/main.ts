#!/usr/bin/env node
// First: how the process holds its memory, before anything else allocates (see the module).
import './memory-settings.js';
// Then: when V8 optimises the hot functions (see the module).
import './jit-settings.js';
import { readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig, formatProblem, dumpConfig } from '../config/load.js';
import type { LoadOptions } from '../config/load.js';
import { INLINE_FILE } from '../config/include.js';
import type { ConfigProblem, ErrorLogTarget } from '../config/types.js';
import { SLUICE_VERSION } from '../core/version.js';
import { ADDON_PATH, nativeAddonProblem } from '../core/native-addon.js';
import { runClientCommand } from '../ws-client/command.js';
import { runEchoCommand, startEchoServer } from '../echo/echo-server.js';
import { ConfigError, startProxy } from '../index.js';
import { installLastResort } from '../server/last-resort.js';
import type { ListenerInfo, ProxyHandle } from '../index.js';
import { askRunningInstance, controlSocketPath, serveControl } from '../cluster/control-socket.js';
import type { ControlServer } from '../cluster/control-socket.js';
import { writePidFile } from '../cluster/pid-file.js';
import { loadPinned, runPrimary, workerCount } from '../cluster/primary.js';
import { isWorkerProcess, runWorker } from '../cluster/worker.js';
import { applyEnv, applyProcessSettings } from '../cluster/process-settings.js';
import { collectForDaemonParent, daemonize, isDaemonChild, reportDaemonFailed, reportDaemonReady } from './daemon.js';
import { keptServers } from '../server/orphans.js';
import { HELP, UsageError, parseArgs } from './args.js';
import { waitForExit } from './wait-exit.js';
import type { CliArgs } from './args.js';
import { DEFAULT_BACKEND_PORTS, DEFAULT_CONFIG, DEFAULT_LISTEN } from './default-config.js';
import { ProcessNotices, RELOAD_FAILED, logLines, logShowsOnStderr, signalReceived } from '../observability/process-notices.js';

/** SIGTERM/SIGINT (`-s stop`): requests in flight get this long, then tunnels get close 1001. */
const FAST_STOP_GRACE_MS = 1_000;
/** `-s stop|quit --wait`: how much longer than the stop's own limit the command waits for the exit. */
const WAIT_MARGIN_MS = 30_000;

function err(line: string): void {
  process.stderr.write(`sluice: ${line}\n`);
  collectForDaemonParent(`sluice: ${line}`);
}

/** The start-up line; a daemon's command line prints it for it. */
function announce(line: string): void {
  err(line);
  reportDaemonReady(`sluice: ${line}`);
}

function printProblems(problems: readonly ConfigProblem[]): void {
  for (const p of problems) {
    err(formatProblem(p));
    if (p.hint) {
      process.stderr.write(`  hint: ${p.hint}\n`);
      collectForDaemonParent(`  hint: ${p.hint}`);
    }
  }
}

/**
 * A failed reload's problems on stderr, each once: where the error log writes a problem's line to
 * stderr already (the default setup), only its hint is added; elsewhere the whole problem, as
 * `-t` shows it.
 */
function printReloadProblems(problems: readonly ConfigProblem[], logs: readonly ErrorLogTarget[]): void {
  for (const p of problems) {
    if (!logShowsOnStderr(logs, p.level ?? 'emerg')) printProblems([p]);
    else if (p.hint) err(`hint for ${p.line === 0 ? p.file : `${p.file}:${p.line}`}: ${p.hint}`);
  }
}

function loadOptions(args: CliArgs): LoadOptions & { name: string } {
  const o: LoadOptions & { name: string } = { name: '<embedded default>' };
  if (args.configFile !== null) {
    // nginx resolves a relative -c against the prefix (-p) when one is given.
    o.file = args.prefix !== null ? resolve(args.prefix, args.configFile) : resolve(args.configFile);
    o.name = o.file;
  } else {
    o.text = DEFAULT_CONFIG;
  }
  if (args.prefix !== null) o.prefix = resolve(args.prefix);
  if (args.globalDirectives !== null) o.globalDirectives = args.globalDirectives;
  return o;
}

function listenersText(listeners: readonly ListenerInfo[]): string {
  return listeners.map((l) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`).join(', ') || '(no listeners)';
}

async function testConfig(args: CliArgs): Promise<number> {
  const o = loadOptions(args);
  const result = await loadConfig(o);
  if (!result.ok) {
    printProblems(result.problems);
    err(`configuration file ${o.name} test failed`);
    return 1;
  }
  // nginx prints warnings even with -q, which hides only the two success lines.
  printProblems(result.config.warnings);
  if (!args.quiet) {
    err(`the configuration file ${o.name} syntax is ok`);
    err(`configuration file ${o.name} test is successful`);
    // Sluice: with an instance running, say what a reload to this configuration would drain.
    const running = result.config.pid ? await askRunningInstance(result.config.pid, keptServers(result.config)) : null;
    if (running) err(`the running instance (pid ${running.pid}) has ${running.open} open tunnel(s); this configuration would drain ${running.drained} of them`);
  }
  // nginx dumps only a configuration that passed the test, even with -q.
  // The embedded config is dumped under the name the two lines above gave it.
  if (args.dump) process.stdout.write(dumpConfig(result.config.sources.map((s) => (o.file === undefined && s.file === INLINE_FILE ? { ...s, file: o.name } : s))));
  return 0;
}

async function run(args: CliArgs): Promise<number> {
  const o = loadOptions(args);
  // A worker process forked by the primary (worker_processes > 1) serves what the primary says.
  if (isWorkerProcess()) process.exit(await runWorker(o));
  const demo = args.configFile === null;
  const backends = demo
    ? await Promise.all(DEFAULT_BACKEND_PORTS.map((port) => startEchoServer({ port, host: '127.0.0.1', id: `echo-${port}` })))
    : [];
  const pinned = await loadPinned(o);
  // nginx prints the configuration's warnings when it starts.
  if (pinned.result.ok && !isDaemonChild()) printProblems(pinned.result.config.warnings);
  // daemon on: the configuration is known good; the rest happens in a detached process.
  if (pinned.result.ok && pinned.result.config.process.daemon && !isDaemonChild()) {
    await Promise.all(backends.map((b) => b.close()));
    return daemonize((line) => process.stderr.write(`${line}\n`));
  }
  // With `user` (as root) there is always a primary, as nginx's master: it keeps root to bind the
  // addresses a reload adds and to read keys, while the workers run as the user.
  if (pinned.result.ok && (workerCount(pinned.result.config) > 1 || pinned.result.config.user !== null)) {
    const code = await runPrimary({
      load: o, config: pinned.result.config, text: pinned.text, fastStopMs: FAST_STOP_GRACE_MS, say: err, printProblems: printReloadProblems,
      onListening: (listeners) => announce(`sluice/${SLUICE_VERSION} running ${o.name}, listening on ${listenersText(listeners)} (pid ${process.pid})`),
    });
    await Promise.all(backends.map((b) => b.close()));
    return code;
  }
  let proxy: ProxyHandle;
  // `env NAME=VALUE` before anything runs (TZ, say, changes $time_local).
  if (pinned.result.ok) applyEnv(pinned.result.config.process.env);
  try {
    proxy = await startProxy({ ...o, announceReloads: false });
  } catch (e) {
    await Promise.all(backends.map((b) => b.close()));
    if (e instanceof ConfigError) printProblems(e.problems);
    else err(`[emerg] ${(e as Error).message}`);
    return 1;
  }
  let pidFile = proxy.config.pid;
  let control: ControlServer | null = null;
  // This one process is nginx's master and worker at once: its notices say what both would.
  const notices = new ProcessNotices(() => ({ write: (level, message) => proxy.log(level, message), targets: proxy.config.errorLogs }), err);
  // The signal handlers come first, as nginx's master sets its signals before it writes its pid
  // file: a `sluice -s reload` that finds the pid file, or a HUP sent the moment the start-up line
  // shows, would otherwise meet the default action and end the process.
  let stopping = false;
  const handlers: [NodeJS.Signals, () => void][] = [];
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (done = resolve));
  const removeLastResort = installLastResort((e, origin) => proxy.reportUncaught(e, origin));
  const removeHandlers = (): void => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
    removeLastResort();
  };
  const shutdown = (signal: NodeJS.Signals, graceMs: number, graceful: boolean): void => {
    if (stopping) {
      notices.notice(signalReceived(signal, true));
      proxy.destroy();
      return;
    }
    stopping = true;
    notices.notice(signalReceived(signal));
    if (graceful) proxy.log('notice', 'gracefully shutting down');
    const targets = proxy.config.errorLogs;
    void proxy.close(graceMs).then(async () => {
      // The proxy's log files are closed by now: the last lines go through files of their own.
      await logLines(targets, [['notice', 'exiting'], ['notice', 'exit']]);
      await Promise.all(backends.map((b) => b.close()));
      control?.close();
      if (pidFile) rmSync(pidFile, { force: true });
      removeHandlers();
      done(0);
    });
  };
  const on = (signal: NodeJS.Signals, handler: () => void): void => {
    handlers.push([signal, handler]);
    process.on(signal, handler);
  };
  // nginx: TERM/INT stop fast, QUIT stops gracefully, HUP reloads, USR1 reopens the logs.
  on('SIGTERM', () => shutdown('SIGTERM', FAST_STOP_GRACE_MS, false));
  on('SIGINT', () => shutdown('SIGINT', FAST_STOP_GRACE_MS, false));
  on('SIGQUIT', () => shutdown('SIGQUIT', proxy.config.workerShutdownTimeout, true));
  on('SIGHUP', () => {
    if (stopping) return;
    notices.notice(signalReceived('SIGHUP'));
    notices.notice('reconfiguring');
    const before = proxy.config.process;
    proxy.reload().then(
      (r) => {
        for (const alert of applyProcessSettings(proxy.config.process, 0, before)) proxy.log('alert', alert);
        notices.notice(`reconfigured: ${r.opened.length} listener(s) opened, ${r.closed.length} closed, ${r.drained} tunnel(s) to removed servers`);
      },
      (e: unknown) => {
        // A quit that came while the configuration was read: the reload no longer matters.
        if (stopping) return;
        if (e instanceof ConfigError) printReloadProblems(e.problems, proxy.config.errorLogs);
        else if (!logShowsOnStderr(proxy.config.errorLogs, 'emerg')) err(`[emerg] ${(e as Error).message}`);
        // The proxy logged it already: said again only where that log does not reach stderr.
        if (!logShowsOnStderr(proxy.config.errorLogs, 'alert')) err(`[alert] ${RELOAD_FAILED}`);
      },
    );
  });
  on('SIGUSR1', () => {
    notices.notice(signalReceived('SIGUSR1'));
    proxy.reopenLogs();
    notices.notice('reopening logs');
  });
  if (pidFile) {
    // After the listeners, as nginx; when it cannot be written, nginx does not start. The
    // embedded demo runs anyway (its default pid file is in whatever directory it was started
    // from), without -s.
    const failed = writePidFile(pidFile);
    if (failed && demo) {
      err(`[warn] ${failed}; "sluice -s" will not find this instance`);
      pidFile = null;
    } else if (failed) {
      err(`[emerg] ${failed}`);
      removeHandlers();
      proxy.destroy();
      await Promise.all(backends.map((b) => b.close()));
      return 1;
    }
  }
  for (const alert of applyProcessSettings(proxy.config.process, 0)) proxy.log('alert', alert);
  if (pidFile) {
    const h = proxy;
    control = await serveControl(controlSocketPath(pidFile), async (req) => ({ ok: true, pid: process.pid, ...h.drainImpact(new Set(req.kept)) }))
      .catch(() => null);
    // A stop that came while the control socket opened has closed what it knew of.
    if (stopping) control?.close();
  }
  if (stopping) return finished;
  announce(`sluice/${SLUICE_VERSION} running ${o.name}, listening on ${listenersText(proxy.listeners)} (pid ${process.pid})`);
  if (demo) {
    process.stdout.write(
      `\nSluice is proxying ${DEFAULT_LISTEN} to two echo backends (127.0.0.1:${DEFAULT_BACKEND_PORTS.join(' and :')}), round robin.\n` +
      `  Open     http://${DEFAULT_LISTEN}/ in a browser: the page opens a WebSocket through Sluice.\n` +
      `  Or try   npx sluice client ws://${DEFAULT_LISTEN}/whoami   (wscat -c ws://${DEFAULT_LISTEN}/ too)   or   curl http://${DEFAULT_LISTEN}/hello\n` +
      `  Stop with Ctrl-C.\n\n`,
    );
  }
  return finished;
}

const SIGNALS: Readonly<Record<string, NodeJS.Signals>> = { stop: 'SIGTERM', quit: 'SIGQUIT', reload: 'SIGHUP', reopen: 'SIGUSR1' };

/** `-s stop|quit|reload|reopen`: signals the instance named by the config's pid file, as nginx does. */
async function signalProcess(args: CliArgs): Promise<number> {
  const signal = SIGNALS[args.signal ?? ''];
  if (!signal) {
    err(`invalid option: "-s ${args.signal ?? ''}"`);
    return 1;
  }
  const o = loadOptions(args);
  const loaded = await loadConfig(o);
  if (!loaded.ok) {
    printProblems(loaded.problems);
    return 1;
  }
  const pidFile = loaded.config.pid;
  if (!pidFile) {
    err(`[error] no "pid" directive in ${o.name}: -s needs the pid file of the running instance`);
    return 1;
  }
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    err(`[error] open() "${pidFile}" failed (${code === 'ENOENT' ? '2: No such file or directory' : (code ?? (e as Error).message)})`);
    return 1;
  }
  const pid = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || pid <= 0) {
    err(`[error] invalid PID number "${text.trim()}" in "${pidFile}"`);
    return 1;
  }
  // nginx's signaller leaves its own line in the instance's error log.
  await logLines(loaded.config.errorLogs, [['notice', 'signal process started']]);
  try {
    process.kill(pid, signal);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // nginx names the signal by its number: kill(1234, 1) failed (3: No such process).
    err(`[alert] kill(${pid}, ${constants.signals[signal]}) failed (${code === 'ESRCH' ? '3: No such process' : code === 'EPERM' ? '1: Operation not permitted' : (code ?? '')})`);
    return 1;
  }
  const grace = loaded.config.workerShutdownTimeout;
  // Sluice: nginx's -s quit returns at once without a word; a graceful stop may take up to
  // worker_shutdown_timeout while tunnels are open, which a script should know.
  if (args.signal === 'quit') {
    err(`[notice] sent QUIT to pid ${pid}: it stops accepting and exits once requests are done; open tunnels may keep it up to worker_shutdown_timeout (${grace / 1000}s)${args.wait ? '' : ' (--wait waits for the exit)'}`);
  }
  if (!args.wait) return 0;
  // Bounded: the stop's own limit (worker_shutdown_timeout, or the fast stop's grace) and a margin
  // for a loaded machine; a process still there after that is reported, not waited on forever.
  const limit = (args.signal === 'quit' ? grace : FAST_STOP_GRACE_MS) + WAIT_MARGIN_MS;
  if (await waitForExit(pid, limit)) return 0;
  err(`[error] pid ${pid} is still running ${limit / 1000}s after ${signal}`);
  return 1;
}

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      err(e.message);
      process.stderr.write(HELP);
      return 1;
    }
    throw e;
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      process.stderr.write(`sluice version: sluice/${SLUICE_VERSION}\n`);
      if (args.verbose) {
        process.stderr.write(`built with node ${process.version} (${process.platform} ${process.arch})\n`);
        // Whether tunnels will move in C (native_tunnels) or in the TypeScript relay, and why.
        const problem = nativeAddonProblem();
        process.stderr.write(problem === '' ? `native tunnel addon: loaded (${ADDON_PATH})\n` : `native tunnel addon: not loaded, ${problem}; tunnels use the TypeScript relay\n`);
      }
      return 0;
    case 'echo':
      await runEchoCommand([...args.rest]);
      return 0;
    case 'client':
      return runClientCommand([...args.rest]);
    case 'test':
      return testConfig(args);
    case 'signal':
      return signalProcess(args);
    case 'run': {
      const code = await run(args);
      if (code !== 0) await reportDaemonFailed();
      return code;
    }
  }
}

/**
 * Standard output and error closed under Sluice (`sluice ... 2>&1 | head`, a terminal gone) make
 * every later write fail with EPIPE, which Node reports as an 'error' event: unheard, it becomes an
 * uncaught exception, whose report is written to stderr, fails again, and so on, a loop at full
 * CPU that no signal could end. nginx ignores SIGPIPE and its failed writes to stderr; so does
 * Sluice: the lines are lost, the proxy goes on (its log files, if any, still have them).
 */
function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
}

ignoreClosedOutput();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    err(`[emerg] ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
