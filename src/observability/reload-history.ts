/**
 * The reload figures of the statistics: counts, the last result and the newest reloads. Kept by
 * whoever decides reloads: a proxy's ProxyStats in a single process, and the primary with worker
 * processes, since the primary validates first and a configuration it refuses never reaches a
 * worker (nginx's master does the same: its workers never see a broken configuration).
 */
import { RECENT_LIMIT } from './stats.js';
import type { ReloadFigures, ReloadRecord } from './stats.js';

/** One reload attempt as it is recorded. */
export interface ReloadAttempt {
  readonly ok: boolean;
  /** The main configuration file ("<inline>" for text). */
  readonly file: string;
  /** Why it failed (formatted problems), or what went wrong in part of an applied one. */
  readonly problems: readonly string[];
  /** Open tunnels whose upstream server the new configuration no longer has. */
  readonly drained: number;
}

export class ReloadHistory {
  readonly #counts = { ok: 0, failed: 0, drained: 0, lastTime: 0, lastOk: 1 };
  readonly #recent: ReloadRecord[] = [];

  record(attempt: ReloadAttempt, time = Date.now()): void {
    if (attempt.ok) this.#counts.ok++;
    else this.#counts.failed++;
    this.#counts.drained += attempt.drained;
    this.#counts.lastTime = time;
    this.#counts.lastOk = attempt.ok ? 1 : 0;
    this.#recent.unshift({ time, ok: attempt.ok, file: attempt.file, problems: [...attempt.problems], drained: attempt.drained, pid: process.pid });
    if (this.#recent.length > RECENT_LIMIT) this.#recent.pop();
  }

  /** A copy, for a snapshot. */
  figures(): ReloadFigures {
    return { ...this.#counts, recent: this.#recent.map((r) => ({ ...r, problems: [...r.problems] })) };
  }
}
