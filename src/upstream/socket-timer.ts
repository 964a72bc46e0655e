import type { Socket } from 'node:net';

/**
 * An upstream connection's inactivity timer, in place of `socket.setTimeout`, which makes a new
 * Timeout and a bound function at every call with a delay: a keep-alive connection armed one
 * for its read timeout and one for its idle time in the cache on every request. Here a socket
 * keeps one timer per delay it was armed with (the read, send and keep-alive timeouts: a few)
 * for its life; arming refreshes the one of that delay and makes it the current one; a timer
 * that fires while not current does nothing. As with `socket.setTimeout`, expiry emits
 * 'timeout' on the socket and nothing else; reads restart the current timer only when the owner
 * says so ({@link touchSocketTimer}, Node's socket timer restarts on every read and write).
 * Every timer is cleared when the socket closes, or when {@link dropSocketTimers} hands the
 * socket on (an upgrade's tunnel): an armed timer holds its socket.
 */
const kTimers = Symbol('sluice.socketTimers');

/** More delays than this on one socket (many locations with different timeouts): the oldest timer goes. */
const MAX_TIMERS = 4;

/** A socket's timers, by the delay each was made with, and the armed one. */
class SocketTimers {
  readonly delays: number[] = [];
  readonly timers: NodeJS.Timeout[] = [];
  current: NodeJS.Timeout | null = null;
}

type TimedSocket = Socket & { [kTimers]?: SocketTimers };

/** Arms `socket`'s timer for `ms` of inactivity (0: disarms it, as `socket.setTimeout(0)`). */
export function armSocketTimer(socket: Socket, ms: number): void {
  const s = socket as TimedSocket;
  let st = s[kTimers];
  if (ms <= 0) {
    if (st !== undefined) st.current = null;
    return;
  }
  if (st === undefined) {
    st = new SocketTimers();
    s[kTimers] = st;
    s.once('close', socketTimersOnClose);
  }
  const i = st.delays.indexOf(ms);
  if (i >= 0) {
    const t = st.timers[i] as NodeJS.Timeout;
    st.current = t;
    t.refresh();
    return;
  }
  if (st.timers.length >= MAX_TIMERS) {
    st.delays.shift();
    clearTimeout(st.timers.shift());
  }
  const t = setTimeout(socketTimerFired, ms, s);
  t.unref();
  st.delays.push(ms);
  st.timers.push(t);
  st.current = t;
}

/** Restarts the armed timer (a read or a write on the socket); nothing when none is armed. */
export function touchSocketTimer(socket: Socket): void {
  (socket as TimedSocket)[kTimers]?.current?.refresh();
}

/** Clears every timer of `socket`: it leaves the owner that armed them (or closed). */
export function dropSocketTimers(socket: Socket): void {
  const s = socket as TimedSocket;
  const st = s[kTimers];
  if (st === undefined) return;
  s[kTimers] = undefined;
  s.removeListener('close', socketTimersOnClose);
  for (const t of st.timers) clearTimeout(t);
}

/** `this` is the timer that fired (Node calls a timer's callback on it). */
function socketTimerFired(this: NodeJS.Timeout, s: TimedSocket): void {
  const st = s[kTimers];
  if (st === undefined || st.current !== this) return;
  st.current = null;
  s.emit('timeout');
}

function socketTimersOnClose(this: Socket): void {
  dropSocketTimers(this);
}
