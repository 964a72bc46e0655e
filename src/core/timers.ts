/** Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A config duration as a timer delay: longer ones wait the longest a timer can. */
export function timerDelay(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}
