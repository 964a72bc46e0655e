/**
 * The one Redis connection of a serving process, made from the `fleet` directive: shared by every
 * fleet feature (membership and counts today; shared limits and `sticky learn` build on it), kept
 * across reloads while the directive's connection settings stay the same.
 *
 * ioredis is loaded with `await import()` on the first `fleet` config only: most instances run
 * without a fleet, and loading the client and its dependencies costs every start-up otherwise
 * (as bcryptjs is loaded for the forward proxy's first bcrypt hash).
 *
 * The hot path never waits on Redis: commands fail at once while the connection is down (no
 * offline queue, no retries per command) and time out after `timeout=`; ioredis reconnects in the
 * background. The connection reports its state from what really happens to commands, so a Redis
 * that accepts connections but does not answer counts as down.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { FleetConfig } from '../config/types.js';

/** Either kind of ioredis client: both take the same commands, scripts and pipelines. */
export type RedisClient = Redis | Cluster;

/** Reconnect back-off: 100 ms, 200 ms, ... up to this (ms). */
const MAX_RECONNECT_DELAY_MS = 2_000;

/** What the owner hears about the connection: each change of state once, with the reason. */
export interface RedisConnectionEvents {
  /** Redis answered after being down (or for the first time). */
  up(): void;
  /** A command or the connection failed while Redis was up (or before it ever was). */
  down(reason: string): void;
}

/**
 * Whether two `fleet` configs reach the same Redis the same way (a reload then keeps the
 * connection); parameters that only the members' loop reads (heartbeat, ttl, name...) may differ.
 */
export function sameRedis(a: FleetConfig, b: FleetConfig): boolean {
  return a.mode === b.mode && a.tls === b.tls && a.ca === b.ca && a.username === b.username
    && a.password === b.password && a.sentinelPassword === b.sentinelPassword && a.masterName === b.masterName
    && a.db === b.db && a.timeout === b.timeout
    && a.nodes.length === b.nodes.length && a.nodes.every((n, i) => n.host === b.nodes[i]!.host && n.port === b.nodes[i]!.port);
}

/** What the log says about a failure: ioredis's message, but a plain word for "not connected". */
function failureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // ioredis refuses commands while disconnected with a sentence about its own option.
  return message.includes('enableOfflineQueue') ? 'not connected' : message;
}

function reconnectDelay(times: number): number {
  return Math.min(times * 100, MAX_RECONNECT_DELAY_MS);
}

/** The ioredis options for a `fleet` config (pure: unit-tested). */
export function redisOptions(config: FleetConfig, connectionName: string): RedisOptions {
  const tls = config.tls ? { ...(config.ca === null ? {} : { ca: config.ca }), ...(config.mode === 'standalone' ? { servername: config.nodes[0]!.host } : {}) } : undefined;
  return {
    username: config.username ?? undefined,
    password: config.password ?? undefined,
    db: config.db,
    tls,
    connectionName,
    connectTimeout: config.timeout,
    commandTimeout: config.timeout,
    // Fail a command at once while disconnected instead of queueing it: a queued command would
    // answer late, with counts too old to balance by.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay,
    // The fleet's loop decides when to talk to Redis; no connection waits for its first command.
    lazyConnect: false,
  };
}

/** A `fleet` Redis connection: the client, its state, and a clean close. */
export class RedisConnection {
  readonly config: FleetConfig;
  readonly client: RedisClient;
  /** Whether the last command succeeded. Starts false. */
  #up = false;
  /** Whether the down state has been reported since the last up (one report per outage). */
  #reportedDown = false;
  /**
   * Failures so far: a command's success counts only when no failure came while it ran (a reply
   * already on its way when the connection dropped must not report Redis up again).
   */
  #failures = 0;
  #closed = false;
  readonly #events: RedisConnectionEvents;

  private constructor(config: FleetConfig, client: RedisClient, events: RedisConnectionEvents) {
    this.config = config;
    this.client = client;
    this.#events = events;
    // ioredis emits 'error' for each failed reconnect; without a listener it prints them. Only a
    // command's answer counts as up: a Redis shutting down may still accept a reconnect.
    client.on('error', (err: Error) => this.noteFailure(err));
    client.on('close', () => this.noteFailure(new Error('connection closed')));
  }

  /**
   * Opens the connection for `config` (loading ioredis on first use). Resolves once the client
   * exists, without waiting for Redis: a Redis that is down at start is reported through
   * `events.down` and joined when it comes.
   */
  static async open(config: FleetConfig, connectionName: string, events: RedisConnectionEvents): Promise<RedisConnection> {
    const { Redis, Cluster } = await import('ioredis');
    const options = redisOptions(config, connectionName);
    let client: RedisClient;
    if (config.mode === 'cluster') {
      client = new Cluster(config.nodes.map((n) => ({ host: n.host, port: n.port })), {
        redisOptions: options,
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
      });
    } else if (config.mode === 'sentinel') {
      client = new Redis({
        ...options,
        sentinels: config.nodes.map((n) => ({ host: n.host, port: n.port })),
        name: config.masterName!,
        sentinelPassword: config.sentinelPassword ?? undefined,
        enableTLSForSentinelMode: config.tls,
        sentinelRetryStrategy: reconnectDelay,
      });
    } else {
      client = new Redis({ ...options, host: config.nodes[0]!.host, port: config.nodes[0]!.port });
    }
    return new RedisConnection(config, client, events);
  }

  /** Whether Redis answered the last command (false before the first answer). */
  get up(): boolean {
    return this.#up;
  }

  /** Records a command's success: reports `up` when Redis was down. Callers of `client` use it. */
  noteSuccess(): void {
    if (this.#closed || this.#up) return;
    this.#up = true;
    this.#reportedDown = false;
    this.#events.up();
  }

  /** Records a failure: reports `down` once per outage. Callers of `client` use it. */
  noteFailure(err: unknown): void {
    if (this.#closed) return;
    this.#failures++;
    const wasUp = this.#up;
    this.#up = false;
    if (wasUp || !this.#reportedDown) {
      this.#reportedDown = true;
      this.#events.down(failureReason(err));
    }
  }

  /**
   * Runs `command` against the client, recording the outcome; resolves null on failure (already
   * reported) and while not connected. Never throws: fleet features fall back to local state on null.
   */
  async run<T>(command: (client: RedisClient) => Promise<T>): Promise<T | null> {
    // Not connected (yet, or again): the connection's own events report why; a command would
    // only fail at once.
    if (this.#closed || this.client.status !== 'ready') return null;
    const failures = this.#failures;
    try {
      const result = await command(this.client);
      if (this.#failures === failures) this.noteSuccess();
      return result;
    } catch (err) {
      this.noteFailure(err);
      return null;
    }
  }

  /**
   * A Lua script as a function (EVALSHA, loading it on first use or after a Redis restart, by
   * ioredis's defineCommand), run through {@link run}: resolves null when Redis failed. Keys come
   * first (`numberOfKeys` of them), then the arguments. In a Redis Cluster every key a script
   * touches must share one hash slot (a `{tag}` in the key names).
   */
  script(name: string, numberOfKeys: number, lua: string): (...keysAndArgs: (string | number | Buffer)[]) => Promise<unknown> {
    const client = this.client as unknown as Record<string, ((...a: (string | number | Buffer)[]) => Promise<unknown>) | undefined>;
    if (client[name] === undefined) this.client.defineCommand(name, { numberOfKeys, lua });
    return (...keysAndArgs) => this.run(() => client[name]!.apply(this.client, keysAndArgs));
  }

  /**
   * Closes the connection: `last` (e.g. leaving the fleet) runs first when Redis is up, bounded
   * by the timeout; then the socket closes. Idempotent; no event is reported afterwards.
   */
  async close(last?: (client: RedisClient) => Promise<unknown>): Promise<void> {
    if (this.#closed) return;
    if (last !== undefined && this.#up) {
      await Promise.race([last(this.client).catch(() => undefined), new Promise((r) => setTimeout(r, this.config.timeout).unref())]);
    }
    this.#closed = true;
    this.client.disconnect(false);
  }
}
