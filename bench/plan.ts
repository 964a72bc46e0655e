/**
 * What a run measures: the scenarios, their cells, the targets, the repetitions and the window
 * lengths, for each mode. `full` is the reference run (estimated at 30 minutes here from the quick run's cell times), `quick` keeps every
 * scenario with fewer cells and short windows (under 4 minutes), `smoke` proves the harness works
 * (Sluice and nginx, tiny sizes, about a minute).
 */
import type { TargetName } from './targets.js';

export const SCENARIOS = ['idle', 'handshakes', 'small', 'large', 'latency', 'http', 'guardrails', 'cache'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export type Mode = 'full' | 'quick' | 'smoke';

export interface Plan {
  readonly mode: Mode;
  readonly reps: number;
  readonly targets: readonly TargetName[];
  /**
   * Targets of the default plan that take part in the handshakes scenario only (their target is
   * there, and the full run must stay under 40 minutes); named with --targets they run everywhere.
   */
  readonly handshakesOnly?: ReadonlySet<TargetName>;
  readonly scenarios: readonly ScenarioName[];
  /** Scenario 1: tunnels held at each step (cumulative, one proxy process per repetition). */
  readonly idle: { readonly steps: readonly number[]; readonly settleMs: number; readonly windowMs: number };
  /** Scenario 2: concurrent openers (connect, handshake, close, repeat). */
  readonly handshakes: { readonly concurrency: readonly number[]; readonly warmupMs: number; readonly windowMs: number };
  /** Scenario 3: closed loop, sizes x connection counts. */
  readonly small: {
    readonly sizes: readonly number[];
    readonly conns: readonly number[];
    /** Connection counts also run at 64 B with one message in flight per connection (issue 15's target). */
    readonly shallow: readonly number[];
    readonly warmupMs: number;
    readonly windowMs: number;
  };
  /** Scenario 4: closed loop, one message in flight per connection. */
  readonly large: { readonly sizes: readonly number[]; readonly conns: number; readonly warmupMs: number; readonly windowMs: number };
  /** Scenario 5: open loop at a fixed rate. */
  readonly latency: { readonly rate: number; readonly conns: number; readonly size: number; readonly warmupMs: number; readonly windowMs: number };
  /** Scenario 6: wrk against GET /bytes/N. */
  readonly http: { readonly bodies: readonly number[]; readonly conns: number; readonly warmupS: number; readonly durationS: number };
  /** Scenario 7: scenario 3's closed loop with each WebSocket guardrail on (none broken), Sluice only, both relays. */
  readonly guardrails: {
    readonly variants: readonly GuardrailVariant[]; readonly size: number; readonly conns: number; readonly warmupMs: number; readonly windowMs: number;
  };
  /** Scenario 8: wrk against GET /cached/bytes/N, answered from each proxy's cache (the warm-up fills it). */
  readonly cache: { readonly bodies: readonly number[]; readonly conns: number; readonly warmupS: number; readonly durationS: number };
}

/**
 * The guardrails scenario's cells: the location lines each adds, set so that none is ever broken
 * by the closed loop (what is measured is the cost of watching, not of refusing).
 */
export const GUARDRAILS = {
  none: '',
  websocket_max_message_size: 'websocket_max_message_size 1m;',
  websocket_max_frame_size: 'websocket_max_frame_size 1m;',
  websocket_ping_interval: 'websocket_ping_interval 1s; websocket_ping_timeout 10s;',
  websocket_message_rate: 'websocket_message_rate 100000/s burst=100000 both;',
  all: 'websocket_max_message_size 1m; websocket_max_frame_size 1m; websocket_ping_interval 1s; websocket_ping_timeout 10s; websocket_message_rate 100000/s burst=100000 both;',
} as const;
export type GuardrailVariant = keyof typeof GUARDRAILS;
const ALL_GUARDRAILS = Object.keys(GUARDRAILS) as GuardrailVariant[];

/** Messages each connection keeps in flight in scenario 3: enough to keep the pipe busy with few connections. */
export function smallDepth(conns: number): number {
  return conns >= 500 ? 1 : conns >= 100 ? 2 : 8;
}

const ALL_TARGETS: readonly TargetName[] = ['direct', 'sluice', 'sluice-workers', 'sluice-reuseport', 'nginx', 'nginx-tuned', 'haproxy', 'http-proxy'];
/** sluice-reuseport: issue 15's workers target with a socket per worker, a handshakes figure (session 29). */
const HANDSHAKES_ONLY: ReadonlySet<TargetName> = new Set(['sluice-reuseport']);

export function planFor(mode: Mode): Plan {
  switch (mode) {
    case 'full':
      return {
        mode,
        reps: 3,
        targets: ALL_TARGETS,
        handshakesOnly: HANDSHAKES_ONLY,
        scenarios: SCENARIOS,
        idle: { steps: [1000, 3000, 6000, 9000], settleMs: 1000, windowMs: 3000 },
        handshakes: { concurrency: [50, 200], warmupMs: 1000, windowMs: 4000 },
        small: { sizes: [64, 1024], conns: [50, 1000], shallow: [50], warmupMs: 1000, windowMs: 4000 },
        large: { sizes: [16 * 1024, 64 * 1024, 1024 * 1024], conns: 8, warmupMs: 1000, windowMs: 4000 },
        latency: { rate: 2000, conns: 100, size: 64, warmupMs: 1000, windowMs: 8000 },
        http: { bodies: [2, 16 * 1024], conns: 50, warmupS: 1, durationS: 4 },
        guardrails: { variants: ALL_GUARDRAILS, size: 64, conns: 50, warmupMs: 1000, windowMs: 4000 },
        cache: { bodies: [16 * 1024], conns: 50, warmupS: 1, durationS: 4 },
      };
    case 'quick':
      return {
        mode,
        reps: 1,
        targets: ALL_TARGETS,
        handshakesOnly: HANDSHAKES_ONLY,
        scenarios: SCENARIOS,
        idle: { steps: [1000, 3000], settleMs: 500, windowMs: 1000 },
        handshakes: { concurrency: [50], warmupMs: 400, windowMs: 1500 },
        small: { sizes: [64], conns: [50, 1000], shallow: [50], warmupMs: 400, windowMs: 1500 },
        large: { sizes: [64 * 1024], conns: 8, warmupMs: 400, windowMs: 1500 },
        latency: { rate: 2000, conns: 100, size: 64, warmupMs: 500, windowMs: 2000 },
        http: { bodies: [2], conns: 50, warmupS: 1, durationS: 2 },
        guardrails: { variants: ALL_GUARDRAILS, size: 64, conns: 50, warmupMs: 400, windowMs: 1500 },
        cache: { bodies: [16 * 1024], conns: 50, warmupS: 1, durationS: 2 },
      };
    case 'smoke':
      return {
        mode,
        reps: 1,
        targets: ['sluice', 'nginx'],
        // What CI runs: the guardrails scenario is Sluice against itself, measured in full and quick runs.
        scenarios: SCENARIOS.filter((s) => s !== 'guardrails'),
        idle: { steps: [100], settleMs: 300, windowMs: 500 },
        handshakes: { concurrency: [10], warmupMs: 300, windowMs: 1000 },
        small: { sizes: [64], conns: [10], shallow: [], warmupMs: 300, windowMs: 1000 },
        large: { sizes: [16 * 1024], conns: 2, warmupMs: 300, windowMs: 1000 },
        latency: { rate: 200, conns: 10, size: 64, warmupMs: 300, windowMs: 1000 },
        http: { bodies: [2], conns: 10, warmupS: 1, durationS: 1 },
        guardrails: { variants: ['none', 'all'], size: 64, conns: 10, warmupMs: 300, windowMs: 1000 },
        cache: { bodies: [16 * 1024], conns: 10, warmupS: 1, durationS: 1 },
      };
  }
}
