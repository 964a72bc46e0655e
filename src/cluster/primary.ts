import { randomBytes } from 'node:crypto';
/**
 * The primary process (nginx's master) for `worker_processes N` > 1: it validates the
 * configuration, forks the workers (Node's cluster module shares the listen sockets; round-robin
 * scheduling hands out connections), writes the pid file once they all listen, and turns signals
 * into orders:
 *
 * - HUP: validate again here; on any problem log every one and keep running; otherwise every
 *   worker reloads in place with the text validated here, so there is only ever one generation
 *   of workers and tunnels keep flowing.
 * - QUIT: graceful (workers stop with `worker_shutdown_timeout`); TERM/INT: fast; USR1: every
 *   process reopens its log files.
 *
 * A worker that dies unexpectedly is logged at `alert` in nginx's words and replaced; workers that
 * keep dying soon after they start are restarted with a growing delay instead of in a loop.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { formatProblem, loadConfig, problemText } from '../config/load.js';
import type { LoadOptions, LoadResult } from '../config/load.js';
import type { Config, ConfigProblem, ErrorLogTarget } from '../config/types.js';
import { workersAcceptShared } from '../server/reuseport.js';
import { PrimaryLimitStore } from '../limits/cluster-store.js';
import { PrimarySessions } from './shared-sessions.js';
import { ErrorLog } from '../observability/error-log.js';
import { LogFiles } from '../observability/log-files.js';
import { ProcessNotices, RELOAD_FAILED, signalReceived } from '../observability/process-notices.js';
import { handLogsTo, logPaths } from '../observability/log-paths.js';
import { ReloadHistory } from '../observability/reload-history.js';
import { GOING_AWAY_GRACE_MS } from '../proxy/tunnel/tunnel.js';
import type { ListenerInfo } from '../server/proxy-server.js';
import { TICKET_KEY_BYTES, TICKET_KEY_ENV } from '../server/tls-ticket-keys.js';
import { WORKER_INDEX_ENV } from './process-settings.js';
import { ACCEPT_SHARE_ENV, LoadTable } from './load-table.js';
import { controlSocketPath, serveControl } from './control-socket.js';
import { errnoText, writePidFile } from './pid-file.js';
import type { ControlRequest, ControlResponse, ControlServer } from './control-socket.js';
import { STICKY_SECRET_ENV, isFromWorker } from './messages.js';
import type { FromWorker, ToWorker } from './messages.js';

/** A worker that lived less than this before dying counts as dying "at start". */
export const MIN_UPTIME_MS = 5_000;
/** The longest wait before starting a worker again after repeated deaths at start. */
export const MAX_RESPAWN_DELAY_MS = 30_000;
/** How long the primary waits for every worker to answer a question (statistics, impact). */
const ANSWER_WAIT_MS = 1_500;
/** How long a reload may take in the workers before the primary stops waiting for their answers. */
const RELOAD_WAIT_MS = 30_000;
/** On top of the stop grace: time for tunnels' close 1001 and for the processes to exit. */
const EXIT_MARGIN_MS = GOING_AWAY_GRACE_MS + 5_000;

/** `worker_processes`: a number, or `auto` = the CPUs this process may use. */
export function workerCount(config: Config): number {
  return config.workerProcesses === 'auto' ? availableParallelism() : config.workerProcesses;
}

/**
 * Loads the configuration after reading the main file's text once, so that exactly that text can
 * be handed to every worker (a file edited between the check and a worker's start cannot make
 * workers run different configurations). `text` is null for an unreadable file: the load reports it.
 */
export async function loadPinned(load: LoadOptions): Promise<{ result: LoadResult; text: string | null }> {
  if (load.text !== undefined || load.file === undefined) return { result: await loadConfig(load), text: load.text ?? null };
  let text: string;
  try {
    text = readFileSync(load.file, 'utf8');
  } catch {
    return { result: await loadConfig(load), text: null };
  }
  return { result: await loadConfig({ ...load, text }), text };
}

export interface PrimaryOptions {
  /** The file, prefix and -g every worker loads (the same as the primary's). */
  readonly load: LoadOptions;
  /** The configuration checked at start-up and the main file's text it came from. */
  readonly config: Config;
  readonly text: string | null;
  /** Grace of a fast stop (TERM/INT) for requests in flight. */
  readonly fastStopMs: number;
  /** Writes one line of the command line's own output ("sluice: LINE" on stderr). */
  readonly say: (line: string) => void;
  /** Shows a failed reload's problems on the command line (the error log in force has them too). */
  readonly printProblems: (problems: readonly ConfigProblem[], logs: readonly ErrorLogTarget[]) => void;
  /** Called once every worker serves and the pid file is written: the addresses, with the ports they are bound to. */
  readonly onListening: (listeners: readonly ListenerInfo[]) => void;
}

interface WorkerSlot {
  readonly worker: Worker;
  readonly pid: number;
  readonly startedAt: number;
  ready: boolean;
  /** The configuration generation it runs (or will run once started). */
  generation: number;
  /** Told to stop: its exit is expected. */
  retiring: boolean;
  /** Its number among the workers (0 to worker_processes - 1). */
  readonly index: number;
  /** Its slot in the load table (`accept_mutex off`; -1: none), never another live worker's, a retiring one's included. */
  readonly loadSlot: number;
}

/** The lowest number from 0 up that `used` does not hold. */
function lowestFree(used: readonly number[]): number {
  let n = 0;
  while (used.includes(n)) n++;
  return n;
}

interface Question {
  readonly want: Set<number>;
  readonly answers: Map<number, FromWorker>;
  readonly done: (answers: Map<number, FromWorker>) => void;
  readonly timer: NodeJS.Timeout;
}

function signalNumber(signal: string): number | string {
  return (constants.signals as Record<string, number | undefined>)[signal] ?? signal;
}

/** Runs the primary until it is stopped; resolves with the exit code. */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  let config = opts.config;
  let text = opts.text;
  /** The files the configuration's ssl_* directives name, as read here: workers may not read them (`user`). */
  let tlsFiles = opts.config.files;
  /** Bumped by every reload that passed validation. */
  let generation = 0;
  let desired = workerCount(config);
  const files = new LogFiles();
  let log = new ErrorLog(config.errorLogs, files);
  // The primary's own notices (signals, reconfiguring, reopening logs) in the error log with the workers' lines.
  const notices = new ProcessNotices(() => ({ write: (level, message) => log.log(level, message), targets: config.errorLogs }), opts.say);
  // What the workers' status pages report about reloads: the primary decides them all.
  const reloads = new ReloadHistory();

  let pidFile = config.pid;
  /** The pid file this process wrote (and removes at exit); none until the workers listen. */
  let pidWritten: string | null = null;
  let control: ControlServer | null = null;

  const slots = new Map<number, WorkerSlot>();
  /** The workers' load table, made before the first fork when they accept on shared sockets. */
  let loadTable: LoadTable | null = null;
  const questions = new Map<number, Question>();
  let nextQuestion = 1;
  let reloadSeq = 0;
  const reloadWaits = new Map<number, { want: Set<number>; results: FromWorker[]; done: () => void }>();
  let stopping = false;
  let starting = true;
  let quickDeaths = 0;
  const respawnTimers = new Set<NodeJS.Timeout>();
  let exitCode = 0;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let startupDone: (failure: string | null) => void = () => {};
  let listening: readonly ListenerInfo[] = [];
  const startup = new Promise<string | null>((resolve) => {
    startupDone = (failure) => {
      // Settled once: a worker that gets ready after another failed changes nothing.
      starting = false;
      resolve(failure);
    };
  });

  /**
   * With `user`, the workers open their log files without root: the primary makes them and hands
   * them over first, as nginx's master does on a reload or a reopen.
   */
  const prepareLogs = (c: Config): void => {
    if (c.user === null) return;
    for (const failure of handLogsTo(logPaths(c), c.user.uid)) log.log('alert', failure);
  };
  const live = (): WorkerSlot[] => [...slots.values()].filter((s) => !s.retiring);
  const sendTo = (slot: WorkerSlot, m: ToWorker): void => {
    if (slot.worker.isConnected()) slot.worker.send(m);
  };

  /** Sends a question to `targets` and resolves with each answer, or what came within ANSWER_WAIT_MS. */
  const ask = (targets: readonly WorkerSlot[], make: (id: number) => ToWorker): Promise<Map<number, FromWorker>> => {
    if (targets.length === 0) return Promise.resolve(new Map());
    const id = nextQuestion++;
    return new Promise((done) => {
      const q: Question = {
        want: new Set(targets.map((t) => t.worker.id)),
        answers: new Map(),
        done,
        timer: setTimeout(() => settleQuestion(id), ANSWER_WAIT_MS),
      };
      questions.set(id, q);
      for (const t of targets) sendTo(t, make(id));
    });
  };
  const settleQuestion = (id: number): void => {
    const q = questions.get(id);
    if (!q) return;
    questions.delete(id);
    clearTimeout(q.timer);
    q.done(q.answers);
  };
  const answer = (workerId: number, id: number, m: FromWorker): void => {
    const q = questions.get(id);
    if (!q || !q.want.delete(workerId)) return;
    q.answers.set(workerId, m);
    if (q.want.size === 0) settleQuestion(id);
  };
  const forget = (workerId: number): void => {
    for (const [id, q] of questions) if (q.want.delete(workerId) && q.want.size === 0) settleQuestion(id);
    for (const w of reloadWaits.values()) if (w.want.delete(workerId) && w.want.size === 0) w.done();
  };

  const limits = new PrimaryLimitStore();
  const sessions = new PrimarySessions();
  const onMessage = (slot: WorkerSlot, m: FromWorker): void => {
    switch (m.sluice) {
      case 'hello':
        slot.generation = generation;
        sendTo(slot, { sluice: 'start', text, files: tlsFiles });
        return;
      case 'ready':
        slot.ready = true;
        if (starting && live().every((s) => s.ready)) {
          listening = m.listeners;
          startupDone(null);
        }
        // It started from a configuration that a reload has replaced since.
        if (slot.generation !== generation && !stopping) {
          slot.generation = generation;
          sendTo(slot, { sluice: 'reload', seq: 0, text, files: tlsFiles });
        }
        if (stopping) sendTo(slot, { sluice: 'stop', graceMs: 0, graceful: false });
        return;
      case 'failed':
        if (stopping) return;
        if (starting) startupDone(m.message);
        else for (const line of m.message.split('\n')) log.log('emerg', line.replace(/^\[emerg\] /, ''));
        return;
      case 'reloaded':
        for (const w of reloadWaits.values()) {
          if (w.want.delete(slot.worker.id)) {
            w.results.push(m);
            if (w.want.size === 0) w.done();
          }
        }
        return;
      case 'stats-request': {
        const others = live().filter((s) => s.ready && s !== slot);
        void ask(others, (id) => ({ sluice: 'stats-collect', id })).then((answers) => {
          const snapshots = [...answers.values()].flatMap((a) => (a.sluice === 'stats-snapshot' && a.snapshot !== null ? [a.snapshot] : []));
          sendTo(slot, { sluice: 'stats-result', id: m.id, snapshots, reloads: reloads.figures() });
        });
        return;
      }
      case 'stats-snapshot':
      case 'impact-result':
        answer(slot.worker.id, m.id, m);
        return;
      case 'tls-session':
        // One shared session cache for every worker (nginx's shared memory): each keeps a copy,
        // and this process the whole of it for the workers that miss (cluster/shared-sessions.ts).
        sessions.stored(m.session);
        for (const s of live()) if (s !== slot && s.ready) sendTo(s, { sluice: 'tls-session', session: m.session });
        return;
      case 'tls-session-fetch':
        sessions.fetch(m, (a) => sendTo(slot, a));
        return;
      case 'limit-req':
      case 'limit-conn':
      case 'limit-release': {
        // limit_conn / limit_req zones: one for every worker, here (nginx's shared memory).
        const answer = limits.handle(slot.worker.id, m);
        if (answer !== null) sendTo(slot, answer);
        return;
      }
    }
  };

  // One secret for every worker: a sticky cookie set by one worker routes the same in the others.
  const stickySecret = randomBytes(32);
  // And one session ticket key: a ticket one worker issued resumes in every other (nginx's master
  // makes its key before forking).
  const ticketKey = randomBytes(TICKET_KEY_BYTES);
  const fork = (): WorkerSlot => {
    // Worker numbers are reused (worker_cpu_affinity gives worker N the Nth mask): the lowest free one.
    const index = lowestFree(live().map((s) => s.index));
    const env: Record<string, string> = { [STICKY_SECRET_ENV]: stickySecret.toString('hex'), [TICKET_KEY_ENV]: ticketKey.toString('hex'), [WORKER_INDEX_ENV]: String(index) };
    let loadSlot = -1;
    if (loadTable !== null) {
      loadSlot = lowestFree([...slots.values()].map((s) => s.loadSlot));
      const share = loadTable.envFor(loadSlot);
      if (share === null) loadSlot = -1;
      else env[ACCEPT_SHARE_ENV] = share;
    }
    // nginx's `env NAME=VALUE` sets it in the workers' environment.
    for (const e of config.process.env) if (e.value !== null) env[e.name] = e.value;
    const worker = cluster.fork(env);
    const slot: WorkerSlot = { worker, pid: worker.process.pid ?? 0, startedAt: Date.now(), ready: false, generation, retiring: false, index, loadSlot };
    slots.set(worker.id, slot);
    if (!starting) log.log('notice', `start worker process ${slot.pid}`);
    worker.on('message', (m: unknown) => {
      if (isFromWorker(m)) onMessage(slot, m);
    });
    worker.on('error', () => undefined);
    return slot;
  };

  const respawn = (): void => {
    if (stopping || live().length + respawnTimers.size >= desired) return;
    // The first death at start is retried at once; after that the wait doubles up to a ceiling.
    const delay = quickDeaths <= 1 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 500 * 2 ** (quickDeaths - 2));
    if (delay > 0) log.log('alert', `worker processes keep exiting soon after they start; starting another in ${delay / 1000}s`);
    const timer = setTimeout(() => {
      respawnTimers.delete(timer);
      if (!stopping && live().length < desired) fork();
    }, delay);
    respawnTimers.add(timer);
  };

  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.get(worker.id);
    if (!slot) return;
    slots.delete(worker.id);
    // Before a successor can take the slot (respawn below).
    if (slot.loadSlot >= 0) loadTable?.clear(slot.loadSlot);
    forget(worker.id);
    limits.workerGone(worker.id);
    const expected = stopping || slot.retiring;
    // nginx's master logs every worker's exit: at notice when it was told to go.
    if (expected) log.log('notice', signal ? `worker process ${slot.pid} exited on signal ${signalNumber(signal)}` : `worker process ${slot.pid} exited with code ${code ?? 0}`);
    else {
      log.log('alert', signal ? `worker process ${slot.pid} exited on signal ${signalNumber(signal)}` : `worker process ${slot.pid} exited with code ${code ?? 0}`);
      if (starting) {
        startupDone(`worker process ${slot.pid} exited before it was ready`);
      } else {
        const quick = !slot.ready || Date.now() - slot.startedAt < MIN_UPTIME_MS;
        quickDeaths = quick ? quickDeaths + 1 : 0;
        respawn();
      }
    }
    if (stopping && slots.size === 0) finish(exitCode);
  });

  /** Starts or stops workers until `desired` run (after a reload changed worker_processes). */
  const resize = (): void => {
    while (live().length + respawnTimers.size < desired) fork();
    const extra = live().slice(desired);
    for (const s of extra) {
      s.retiring = true;
      sendTo(s, { sluice: 'stop', graceMs: config.workerShutdownTimeout, graceful: true });
    }
  };

  const stopAll = (graceMs: number, graceful: boolean): void => {
    for (const t of respawnTimers) clearTimeout(t);
    respawnTimers.clear();
    if (slots.size === 0) {
      finish(exitCode);
      return;
    }
    for (const s of slots.values()) sendTo(s, { sluice: 'stop', graceMs, graceful });
    // A worker that does not stop in time is killed, so the primary always exits.
    setTimeout(() => {
      for (const s of slots.values()) s.worker.process.kill('SIGKILL');
    }, graceMs + EXIT_MARGIN_MS).unref();
  };

  const impact = async (req: ControlRequest): Promise<ControlResponse> => {
    const workers = live().filter((s) => s.ready);
    const answers = await ask(workers, (id) => ({ sluice: 'impact', id, kept: req.kept }));
    if (answers.size < workers.length) return { ok: false, error: `${workers.length - answers.size} worker process(es) did not answer` };
    let open = 0;
    let drained = 0;
    for (const a of answers.values()) {
      if (a.sluice !== 'impact-result') continue;
      open += a.open;
      drained += a.drained;
    }
    return { ok: true, pid: process.pid, open, drained };
  };

  const openControl = async (): Promise<void> => {
    if (!pidFile) return;
    try {
      control = await serveControl(controlSocketPath(pidFile), impact);
    } catch (e) {
      log.log('warn', `cannot open the control socket "${controlSocketPath(pidFile)}" (${errnoText(e)}); "sluice -t" will not show the impact of a reload`);
    }
  };

  const reload = async (): Promise<void> => {
    notices.notice('reconfiguring');
    const { result, text: next } = await loadPinned(opts.load);
    if (stopping) return;
    if (!result.ok) {
      reloads.record({ ok: false, file: config.file, problems: result.problems.map((p) => formatProblem(p)), drained: 0 });
      for (const p of result.problems) log.log(p.level ?? 'emerg', problemText(p));
      opts.printProblems(result.problems, config.errorLogs);
      notices.tell('alert', RELOAD_FAILED);
      return;
    }
    // The workers apply it first: a listen address that cannot be bound only shows there.
    const previous = { text, tlsFiles, generation };
    text = next;
    tlsFiles = result.config.files;
    generation++;
    const seq = ++reloadSeq;
    prepareLogs(result.config);
    const told = live().filter((s) => s.ready);
    const results: FromWorker[] = [];
    const want = new Set(told.map((s) => s.worker.id));
    const answered = new Promise<void>((done) => {
      if (want.size === 0) done();
      else reloadWaits.set(seq, { want, results, done });
    });
    // One still starting gets the new text when it says it is ready.
    for (const s of told) {
      s.generation = generation;
      sendTo(s, { sluice: 'reload', seq, text, files: tlsFiles });
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([answered, new Promise<void>((r) => (timer = setTimeout(r, RELOAD_WAIT_MS)))]);
    clearTimeout(timer);
    reloadWaits.delete(seq);
    // A stop that came meanwhile ends the reload: resize() would fork a worker for each stopped
    // one that has left already, for a primary that is going.
    if (stopping) return;
    const outcomes = results.flatMap((r) => (r.sluice === 'reloaded' ? [r] : []));
    const failures = [...new Set(outcomes.filter((r) => !r.ok).map((r) => r.message))];
    for (const f of failures) notices.tell('alert', `a worker process could not reload: ${f}`);
    const first = outcomes.find((r) => r.ok);
    if (told.length > 0 && first === undefined) {
      // Nobody could apply it: everyone still runs the previous configuration, and so will
      // workers started from now on.
      text = previous.text;
      tlsFiles = previous.tlsFiles;
      generation = previous.generation;
      for (const s of told) s.generation = previous.generation;
      reloads.record({ ok: false, file: config.file, problems: failures, drained: 0 });
      notices.tell('alert', RELOAD_FAILED);
      return;
    }
    const previousPid = pidFile;
    config = result.config;
    desired = workerCount(config);
    log = new ErrorLog(config.errorLogs, files);
    pidFile = config.pid;
    if (pidFile !== previousPid) {
      // nginx moves the pid file when the pid directive changes.
      control?.close();
      control = null;
      if (pidWritten) rmSync(pidWritten, { force: true });
      pidWritten = null;
      if (pidFile) {
        const failed = writePidFile(pidFile);
        if (failed) log.log('alert', failed);
        else pidWritten = pidFile;
      }
      await openControl();
    }
    resize();
    if (workersAcceptShared(config) !== acceptShared) {
      // Node fixes cluster's scheduling policy at the first fork, for the primary's life. What
      // changed it: accept_mutex, or (without a socket per worker) the last `reuseport`.
      const what = config.acceptMutex !== startedAcceptMutex ? `"accept_mutex" ${config.acceptMutex ? 'on' : 'off'}` : '"reuseport" on one shared socket';
      notices.tell('warn', `${what} takes effect at the next start: the worker processes ${acceptShared ? 'accept for themselves' : 'take connections in turn'} until then`);
    }
    const drained = outcomes.reduce((n, r) => n + r.drained, 0);
    // Applied; workers that could not apply it are named in its problems.
    reloads.record({ ok: true, file: config.file, problems: failures, drained });
    notices.notice(`reconfigured: ${first?.opened ?? 0} listener(s) opened, ${first?.closed ?? 0} closed, ${drained} tunnel(s) to removed servers, ${desired} worker process(es)`);
  };

  const handlers: [NodeJS.Signals, () => void][] = [];
  const on = (signal: NodeJS.Signals, handler: () => void): void => {
    handlers.push([signal, handler]);
    process.on(signal, handler);
  };
  const shutdown = (signal: NodeJS.Signals, graceMs: number, graceful: boolean): void => {
    if (stopping) {
      notices.notice(signalReceived(signal, true));
      for (const s of slots.values()) s.worker.process.kill('SIGKILL');
      return;
    }
    stopping = true;
    notices.notice(signalReceived(signal));
    startupDone('stopped');
    stopAll(graceMs, graceful);
  };
  let reloading = Promise.resolve();
  // nginx: TERM/INT stop fast, QUIT stops gracefully, HUP reloads, USR1 reopens the logs.
  on('SIGTERM', () => shutdown('SIGTERM', opts.fastStopMs, false));
  on('SIGINT', () => shutdown('SIGINT', opts.fastStopMs, false));
  on('SIGQUIT', () => shutdown('SIGQUIT', config.workerShutdownTimeout, true));
  on('SIGHUP', () => {
    if (stopping) return;
    notices.notice(signalReceived('SIGHUP'));
    reloading = reloading.then(() => startup).then(() => reload()).catch((e: unknown) => {
      reloads.record({ ok: false, file: config.file, problems: [(e as Error).message], drained: 0 });
      notices.tell('alert', `reload failed: ${(e as Error).message}`);
    });
  });
  on('SIGUSR1', () => {
    notices.notice(signalReceived('SIGUSR1'));
    files.reopen();
    notices.notice('reopening logs');
    prepareLogs(config);
    for (const s of slots.values()) sendTo(s, { sluice: 'reopen' });
  });

  // `accept_mutex on`: connections in turn, the primary accepts and hands each over IPC (round
  // robin); off (the default): the workers accept for themselves on the shared sockets.
  const acceptShared = workersAcceptShared(config);
  const startedAcceptMutex = config.acceptMutex;
  cluster.schedulingPolicy = acceptShared ? cluster.SCHED_NONE : cluster.SCHED_RR;
  // Accepting on the shared sockets, the workers weigh their loads in a table (cluster/load-table.ts)
  // passed to each as an inherited descriptor after its IPC channel.
  try {
    loadTable = acceptShared ? LoadTable.open() : null;
  } catch (e) {
    log.log('warn', `cannot make the workers' load table (${(e as Error).message}): each worker accepts what it wins on the shared sockets`);
  }
  if (loadTable !== null) cluster.setupPrimary({ stdio: loadTable.workerStdio() });
  for (let i = 0; i < desired; i++) fork();
  let failure = await startup;
  // Every worker listens now (in cluster mode the primary binds each address when the first
  // worker asks for it): a script that waits for the pid file can connect at once.
  if (failure === null && !stopping && pidFile) {
    const failed = writePidFile(pidFile);
    if (failed) failure = `[emerg] ${failed}`;
    else pidWritten = pidFile;
  }
  if (failure !== null && !stopping) {
    // nginx does not start when its listeners cannot be made or its pid file written: neither
    // does the primary.
    for (const line of failure.split('\n')) opts.say(line);
    stopping = true;
    exitCode = 1;
    stopAll(0, false);
  } else if (!stopping) {
    opts.onListening(listening);
    await openControl();
  }

  const code = await finished;
  loadTable?.close();
  for (const [sig, h] of handlers) process.removeListener(sig, h);
  // Assigned by openControl (a closure), which narrowing does not see.
  (control as ControlServer | null)?.close();
  if (pidWritten) rmSync(pidWritten, { force: true });
  log.log('notice', 'exit');
  await files.close();
  return code;
}
