/** What the harness asks a load driver process over IPC, and what the driver answers. */
import type { HistogramJSON } from './histogram.js';

export interface OpenCommand {
  readonly cmd: 'open';
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** WebSocket connections to add to the ones already open. */
  readonly count: number;
  /** Local addresses to spread connections over (127.0.0.x), round robin. */
  readonly sources: readonly string[];
  /** Handshakes in flight at once. */
  readonly concurrency: number;
  readonly timeoutMs: number;
}

/** Closed loop: every connection keeps `depth` messages in flight and sends one per echo. */
export interface ClosedLoopCommand {
  readonly cmd: 'closedLoop';
  readonly size: number;
  readonly depth: number;
}

/**
 * Open loop: `rate` messages per second over this driver's connections, round robin, on a fixed
 * schedule. Latency is measured from the scheduled send time, so queueing delay counts.
 */
export interface OpenLoopCommand {
  readonly cmd: 'openLoop';
  readonly size: number;
  readonly rate: number;
}

/** `concurrency` loops, each: connect, handshake, close (close frame, then FIN), repeat. */
export interface HandshakesCommand {
  readonly cmd: 'handshakes';
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly sources: readonly string[];
  readonly concurrency: number;
  readonly timeoutMs: number;
}

/** Starts the measured window: counters, histogram and CPU are reset. */
export interface MarkCommand {
  readonly cmd: 'mark';
}

/** Ends the window (stops sending), answers its stats, then waits up to `drainMs` for echoes in flight. */
export interface StopCommand {
  readonly cmd: 'stop';
  readonly drainMs: number;
}

export interface CloseAllCommand {
  readonly cmd: 'closeAll';
  readonly timeoutMs: number;
}

export type DriverCommand =
  | OpenCommand
  | ClosedLoopCommand
  | OpenLoopCommand
  | HandshakesCommand
  | MarkCommand
  | StopCommand
  | CloseAllCommand;

export interface OpenResult {
  readonly opened: number;
  readonly failed: number;
  readonly total: number;
  readonly ms: number;
  readonly errorSamples: readonly string[];
}

export interface WindowStats {
  /** Echoed messages (closed/open loop) completed in the window. */
  readonly messages: number;
  /** Handshakes (101 received) completed in the window. */
  readonly handshakes: number;
  /** Round-trip latency in microseconds (messages) or handshake time (handshakes). */
  readonly hist: HistogramJSON;
  /** The driver's own CPU time (user + system) in the window, microseconds. */
  readonly cpuUs: number;
  readonly wallMs: number;
  /** Socket errors, failed handshakes and connections that closed while they should not have. */
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Messages sent but not yet echoed when the window ended. */
  readonly backlog: number;
  /** Messages still unanswered after the drain wait. */
  readonly undrained: number;
}

export interface DriverRequest {
  readonly id: number;
  readonly command: DriverCommand;
}

export interface DriverReply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}
