import type { EventEmitter } from 'node:events';

/** The wait a helper uses when the caller names none: 5 s, far above any healthy local round trip. */
export const DEFAULT_WAIT_MS = 5000;

/**
 * Settles like `promise`, or rejects with `timed out after MS ms waiting for WHAT` once `ms` pass.
 * The timer is cleared either way, so a finished wait keeps nothing alive.
 *
 * @param what - what is awaited, for the failure message ("the 101 response").
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    Promise.resolve(promise).then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error: unknown) => { clearTimeout(timer); reject(error); },
    );
  });
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** @default DEFAULT_WAIT_MS (5000) */
  timeoutMs?: number;
  /** How often to ask again. @default 10 */
  intervalMs?: number;
  /** What is awaited, for the failure message. @default 'condition' */
  what?: string;
}

/**
 * Polls `predicate` (sync or async) until it returns a truthy value, and resolves with that value;
 * rejects after `timeoutMs`. A predicate that throws is asked again; on time-out the last error is
 * named in the message.
 *
 * @example await waitFor(() => backend.requests.length === 2, { what: 'two requests' });
 */
export async function waitFor<T>(
  predicate: () => T | PromiseLike<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const intervalMs = options.intervalMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'condition'}${cause}`);
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Resolves with the arguments of the next `event` on `emitter`; rejects if `emitter` emits
 * `'error'` first (unless `event` is `'error'`) or after `ms`. Listeners are removed either way.
 *
 * @example const [code, reason] = await once(ws, 'close', 2000);
 */
export function once(emitter: EventEmitter, event: string, ms: number = DEFAULT_WAIT_MS): Promise<unknown[]> {
  return new Promise<unknown[]>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    const onEvent = (...args: unknown[]): void => { cleanup(); resolve(args); };
    const onError = (error: unknown): void => { cleanup(); reject(error); };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    emitter.on(event, onEvent);
    if (event !== 'error') emitter.on('error', onError);
  });
}

/** Resolves after `ms`. For pacing only; to wait for something, use {@link waitFor} or {@link once}. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
