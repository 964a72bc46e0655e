/** The environment variable that carries the primary's sticky-cookie secret to its workers. */
export const STICKY_SECRET_ENV = 'SLUICE_STICKY_SECRET';

/**
 * The IPC protocol between the primary (nginx's master) and its worker processes. Every message
 * is a plain object tagged `sluice` so that it never mixes with Node's own cluster messages.
 * The primary holds the configuration text it validated last and hands exactly that text to
 * every worker it starts or reloads, so that all workers always run the same configuration.
 */
import type { Config } from '../config/types.js';
import type { ListenerInfo } from '../server/proxy-server.js';
import type { SessionAnswer, SessionRequest } from './shared-sessions.js';
import type { LimitAnswer, LimitRequest } from '../limits/cluster-store.js';

/** Primary -> worker. */
export type ToWorker =
  /**
   * Start serving; `text` is the main config file's content the primary validated (null: read the
   * file), `files` what its ssl_* directives named, as the primary read them.
   */
  | { readonly sluice: 'start'; readonly text: string | null; readonly files: Config['files'] }
  /** Reload in place with this text and these files (the primary validated them already). */
  | { readonly sluice: 'reload'; readonly seq: number; readonly text: string | null; readonly files: Config['files'] }
  | { readonly sluice: 'reopen' }
  /**
   * Stop: requests in flight get `graceMs`, then tunnels get close 1001 and the rest is destroyed;
   * `graceful` (a quit, a retired worker) decides the words it logs, as nginx's worker.
   */
  | { readonly sluice: 'stop'; readonly graceMs: number; readonly graceful: boolean }
  /** Another worker asked for everyone's statistics: answer with a `stats-snapshot`. */
  | { readonly sluice: 'stats-collect'; readonly id: number }
  /**
   * The answer to this worker's `stats-request`: one snapshot per worker that answered, and the
   * primary's reload figures (it alone sees the reloads it refuses).
   */
  | { readonly sluice: 'stats-result'; readonly id: number; readonly snapshots: readonly unknown[]; readonly reloads: unknown }
  /** `sluice -t` asks: how many open tunnels lack a server among `kept`? */
  | { readonly sluice: 'impact'; readonly id: number; readonly kept: readonly string[] }
  /** A TLS session another worker stored in a shared `ssl_session_cache`, or the answer to a fetch (cluster/shared-sessions.ts). */
  | SessionAnswer
  /** The primary's answer to a worker's limit_req / limit_conn question (limits/cluster-store.ts). */
  | LimitAnswer;

/** Worker -> primary. */
export type FromWorker =
  /** Sent first, once the worker listens for messages: the primary answers with `start`. */
  | { readonly sluice: 'hello' }
  | { readonly sluice: 'ready'; readonly listeners: readonly ListenerInfo[] }
  /** The start failed (a bind error, say); the worker exits after sending this. */
  | { readonly sluice: 'failed'; readonly message: string }
  /** A reload's result: listeners opened and closed, tunnels to removed servers (or why it failed). */
  | {
    readonly sluice: 'reloaded'; readonly seq: number; readonly ok: boolean; readonly message: string;
    readonly drained: number; readonly opened: number; readonly closed: number;
  }
  /** An admin endpoint in this worker wants the statistics of every worker. */
  | { readonly sluice: 'stats-request'; readonly id: number }
  /** This worker's statistics (null when it has none to give). */
  | { readonly sluice: 'stats-snapshot'; readonly id: number; readonly snapshot: unknown }
  | { readonly sluice: 'impact-result'; readonly id: number; readonly open: number; readonly drained: number }
  /** This worker stored a TLS session in a shared cache, or asks for one it misses (cluster/shared-sessions.ts). */
  | SessionRequest
  /** A limit_req / limit_conn question or release: the primary keeps every zone (limits/cluster-store.ts). */
  | LimitRequest;

function tagged(m: unknown): m is { sluice: string } {
  return typeof m === 'object' && m !== null && typeof (m as { sluice?: unknown }).sluice === 'string';
}

/** True for a message of this protocol sent by the primary. */
export function isToWorker(m: unknown): m is ToWorker {
  return tagged(m);
}

/** True for a message of this protocol sent by a worker. */
export function isFromWorker(m: unknown): m is FromWorker {
  return tagged(m);
}
