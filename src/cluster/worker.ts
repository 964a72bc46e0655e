/**
 * A worker process (nginx's worker): runs the proxy from the configuration text the primary
 * validated, shares the listen sockets through Node's cluster module, and does what the primary
 * says (reload in place, reopen logs, stop). Signals are the primary's business: a Ctrl-C in a
 * terminal reaches the whole process group, and the primary decides how the workers stop.
 */
import cluster from 'node:cluster';
import { WorkerLimitStore } from '../limits/cluster-store.js';
import { WorkerSessionSync } from './shared-sessions.js';
import { ConfigError, formatProblem, startProxy } from '../index.js';
import { installLastResort } from '../server/last-resort.js';
import type { ProxyHandle, StartOptions } from '../index.js';
import { STICKY_SECRET_ENV, isToWorker } from './messages.js';
import type { FromWorker, ToWorker } from './messages.js';
import type { Gathered } from '../observability/stats-collector.js';
import type { ReloadFigures, StatsSnapshot } from '../observability/stats.js';
import type { RunAs } from '../config/types.js';
import { handLogsTo, logPaths } from '../observability/log-paths.js';
import { markPrivilegesDropped } from '../core/accounts.js';
import { logLines } from '../observability/process-notices.js';
import { WORKER_INDEX_ENV, applyProcessSettings } from './process-settings.js';

/** This worker's number, 0 to worker_processes - 1, as the primary gave it (for worker_cpu_affinity). */
function workerIndex(): number {
  const n = Number(process.env[WORKER_INDEX_ENV]);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

type StartMessage = Extract<ToWorker, { sluice: 'start' }>;

/**
 * Runs this process as `user` from now on: its log files are handed over first (so reopening
 * them later works), then the group, the supplementary groups and the user, in that order.
 * Returns nginx's words for what failed, or null.
 */
function dropPrivileges(user: RunAs, logs: readonly string[]): string | null {
  const failures = handLogsTo(logs, user.uid);
  if (failures.length > 0) return failures[0]!;
  try {
    process.setgid!(user.gid);
  } catch (e) {
    return `setgid(${user.gid}) failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    (process as NodeJS.Process & { initgroups(user: string, extraGroup: number): void }).initgroups(user.user, user.gid);
  } catch (e) {
    return `initgroups(${user.user}, ${user.gid}) failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    process.setuid!(user.uid);
  } catch (e) {
    return `setuid(${user.uid}) failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  markPrivilegesDropped();
  return null;
}

/** How long a worker waits for the primary's `start` message before giving up. */
const START_WAIT_MS = 30_000;

/** How long a worker waits for the other workers' statistics before serving its own. */
export const STATS_WAIT_MS = 2_000;

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

/**
 * Runs one worker until the primary stops it (or goes away). Resolves with the exit code: 0 after
 * a stop, 1 when the proxy could not start.
 */
export async function runWorker(options: StartOptions): Promise<number> {
  // The primary coordinates shutdown and reloads; these signals reach workers only as part of a
  // process group (a terminal's Ctrl-C) and must not take a worker down on their own.
  for (const sig of ['SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const) process.on(sig, () => {});

  // One listener from the first moment: what the primary sends while the proxy starts (a stop,
  // a reload) waits in the queue instead of being lost.
  const queue: ToWorker[] = [];
  let deliver: ((m: ToWorker) => void) | null = null;
  let started: ((m: StartMessage) => void) | null = null;
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    if (m.sluice === 'limit-result') limitStore.answered(m);
    else if (m.sluice === 'tls-session-found') sessionSync.found(m);
    else if (m.sluice === 'start') started?.(m);
    else if (deliver) deliver(m);
    else queue.push(m);
  });

  // limit_conn / limit_req zones are the primary's, summed over every worker (limits/cluster-store.ts).
  const limitStore = new WorkerLimitStore(send);
  const sessionSync = new WorkerSessionSync(send);
  let proxy: ProxyHandle;
  try {
    const { text, files } = await new Promise<StartMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the primary process sent no start message')), START_WAIT_MS);
      started = (m) => {
        started = null;
        clearTimeout(timer);
        resolve(m);
      };
      // A message sent before this process listened would be lost: ask for the start instead.
      send({ sluice: 'hello' });
    });
    const secret = process.env[STICKY_SECRET_ENV];
    const shared = {
      announceReloads: false,
      ...(secret ? { stickySecret: Buffer.from(secret, 'hex') } : {}),
      sessionSync,
      limitStore,
    };
    proxy = await startProxy(text === null ? { ...options, ...shared, files } : { ...options, ...shared, files, text });
    // Before giving up root: raising the open-file limit may need it.
    for (const alert of applyProcessSettings(proxy.config.process, workerIndex())) proxy.log('alert', alert);
    // nginx's worker gives up root once the listen sockets exist (the primary binds them in
    // cluster mode, and keeps root for the addresses a reload adds).
    if (proxy.config.user !== null) {
      const failed = dropPrivileges(proxy.config.user, logPaths(proxy.config));
      if (failed !== null) {
        proxy.destroy();
        throw new Error(failed);
      }
    }
  } catch (e) {
    const message = e instanceof ConfigError
      ? e.problems.map((p) => formatProblem(p)).join('\n')
      : `[emerg] ${(e as Error).message}`;
    // The primary reports it (once, not once per worker).
    if (process.connected) send({ sluice: 'failed', message });
    else process.stderr.write(message.split('\n').map((l) => `sluice: ${l}\n`).join(''));
    return 1;
  }

  installLastResort((e, origin) => proxy.reportUncaught(e, origin));
  let nextStatsId = 1;
  const pendingStats = new Map<number, (gathered: Gathered) => void>();
  // The status handlers of this worker serve every worker's figures: the others' come over IPC.
  const stats = proxy.stats;
  stats?.setGatherer(() => new Promise<Gathered>((resolve) => {
    const id = nextStatsId++;
    const timer = setTimeout(() => {
      pendingStats.delete(id);
      resolve({ snapshots: [], reloads: null });
    }, STATS_WAIT_MS);
    pendingStats.set(id, (gathered) => {
      clearTimeout(timer);
      pendingStats.delete(id);
      resolve(gathered);
    });
    send({ sluice: 'stats-request', id });
  }));

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = (graceMs: number, graceful: boolean): void => {
      if (stopping) return;
      stopping = true;
      stats?.setGatherer(null);
      // nginx's worker: "gracefully shutting down" on a quit, then "exiting" and "exit" as it leaves.
      if (graceful) proxy.log('notice', 'gracefully shutting down');
      const targets = proxy.config.errorLogs;
      void proxy.close(graceMs)
        .then(() => logLines(targets, [['notice', 'exiting'], ['notice', 'exit']]))
        .then(() => done(0));
    };
    // The primary is gone (killed, say): a worker never outlives it. Node's cluster exits the
    // process at once on an unexpected disconnect; this covers a plain child_process fork.
    process.once('disconnect', () => {
      proxy.destroy();
      done(0);
    });
    // A worker told to stop on its own (kill PID) exits at once; the primary starts another.
    process.on('SIGTERM', () => stop(0, false));

    deliver = (m: ToWorker): void => {
      switch (m.sluice) {
        case 'reload': {
          if (stopping) return;
          const before = proxy.config.process;
          proxy.reload(m.text === null ? { files: m.files } : { text: m.text, files: m.files }).then(
            (r) => {
              for (const alert of applyProcessSettings(proxy.config.process, workerIndex(), before)) proxy.log('alert', alert);
              send({ sluice: 'reloaded', seq: m.seq, ok: true, message: '', drained: r.drained, opened: r.opened.length, closed: r.closed.length });
            },
            (e: unknown) => send({ sluice: 'reloaded', seq: m.seq, ok: false, message: (e as Error).message, drained: 0, opened: 0, closed: 0 }),
          );
          return;
        }
        case 'reopen':
          proxy.reopenLogs();
          proxy.log('notice', 'reopening logs');
          return;
        case 'stop':
          stop(m.graceMs, m.graceful);
          return;
        case 'stats-collect':
          send({ sluice: 'stats-snapshot', id: m.id, snapshot: stats && !stopping ? stats.snapshot() : null });
          return;
        case 'stats-result':
          pendingStats.get(m.id)?.({
            snapshots: m.snapshots.filter((s) => s !== null) as StatsSnapshot[],
            reloads: (m.reloads ?? null) as ReloadFigures | null,
          });
          return;
        case 'impact': {
          const impact = proxy.drainImpact(new Set(m.kept));
          send({ sluice: 'impact-result', id: m.id, open: impact.open, drained: impact.drained });
          return;
        }
        case 'tls-session':
          proxy.addSharedSession(m.session);
          return;
        case 'start':
        case 'limit-result':
        case 'tls-session-found':
          return;
      }
    };
    send({ sluice: 'ready', listeners: proxy.listeners });
    for (const m of queue.splice(0)) deliver(m);
  });
}

/** True in a process the primary forked. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}
