import { CloseCode } from '../../websocket/close-codes.js';
import { FrameGuard } from '../../websocket/frame-guard.js';
import type { FrameLimits } from '../../websocket/frame-guard.js';
import { encodeClose } from '../../websocket/frame-writer.js';
import type { Leg, LegEvents } from './legs.js';
import { MessageRate } from './message-rate.js';
import { Pinger } from './pinger.js';
import type { PingSettings } from './pinger.js';
import { pingRefusal, rateRefusal, sizeRefusal } from './refusals.js';
import type { TunnelGuardrails } from './guardrails.js';
import { goingAwayFrame, goingAwayFrameToClient } from './tunnel.js';
import type { Tunnel, TunnelEngine } from './tunnel.js';

const NO_LIMITS: FrameLimits = { maxFrame: 0, maxMessage: 0 };
const NOTHING = Buffer.alloc(0);

function rateDue(relay: Relay, from: Leg): void {
  relay.rateDue(from);
}

/** What a relay asks for when the native addon might take the tunnel over (socket-tunnel.ts). */
export type HandOver = () => 'moved' | 'not yet' | 'never';

/**
 * The TypeScript engine of a tunnel: a transparent byte pipe between two legs (a socket pair, or
 * an HTTP/2 stream and a socket). Bytes are counted and relayed as they come, each direction
 * paused while the other leg's buffer is full (backpressure) and resumed on its drain. An end
 * (FIN, END_STREAM) is passed on while the other direction keeps flowing (half-close); a failure
 * of one leg aborts the other; once one leg is closed, the other gets what is pending and then
 * closes. The tunnel closes when nothing has moved either way for `idleTimeout` ms.
 *
 * A WebSocket tunnel also follows frame boundaries each way (headers only), so that going away it
 * can end each direction with a close 1001 frame of its own between two frames, and counts its
 * messages and its first close frame for the access log. With guardrails
 * (websocket_max_frame_size, websocket_max_message_size) each header is read whole before it
 * passes: a frame over a limit is never forwarded, its sender gets close 1009 (after the frame in
 * flight towards it) and the other side 1001, as going away.
 */
export class Relay implements TunnelEngine, LegEvents {
  readonly isNative = false;
  readonly #tunnel: Tunnel;
  readonly #client: Leg;
  readonly #upstream: Leg;
  readonly #idleTimeout: number;
  #goingAway = false;
  /**
   * The leg a ping timeout declared dead and closed: its close is no failure to pass on (over
   * HTTP/2 that would reset the client's stream); the other side ends after its close frame.
   */
  #dead: Leg | null = null;
  /** Still relaying though the native addon could take the tunnel: ask again once Node's buffers are empty. */
  #wantsNative = false;
  #handOver: HandOver | null = null;

  readonly #limits: FrameLimits | null;
  readonly #pinger: Pinger | null;
  readonly #pings: PingSettings | null;

  /** `guardrails`: the WebSocket guardrails of the tunnel's route (tunnel/guardrails.ts), null: none. */
  constructor(tunnel: Tunnel, client: Leg, upstream: Leg, idleTimeout: number, guardrails: TunnelGuardrails | null = null) {
    this.#tunnel = tunnel;
    this.#client = client;
    this.#upstream = upstream;
    this.#idleTimeout = idleTimeout;
    const limits = guardrails?.guards ?? null;
    const pings = guardrails?.pings ?? null;
    const rate = guardrails?.rate ?? null;
    this.#limits = limits;
    client.other = upstream;
    upstream.other = client;
    for (const leg of [client, upstream]) {
      leg.events = this;
      if (tunnel.ctx.websocket) leg.guard = new FrameGuard(limits ?? NO_LIMITS, limits !== null || pings !== null || rate !== null);
    }
    this.#pings = pings;
    if (rate !== null && client.guard !== null) {
      client.guard.gate = new MessageRate(rate);
      if (rate.both) (upstream.guard as FrameGuard).gate = new MessageRate(rate);
    }
    this.#pinger = pings !== null && tunnel.ctx.websocket ? new Pinger(pings, client, upstream, (leg) => this.#pingTimedOut(leg)) : null;
  }

  /**
   * Bytes that crossed with the handshake, before the relay runs (client bytes pipelined after the
   * request head, server bytes in the packet of the 101): counted, followed for frame boundaries
   * and written like any others.
   */
  sendAhead(fromClient: Buffer, fromUpstream: Buffer): void {
    if (fromClient.length > 0) this.#ahead(this.#client, fromClient);
    if (fromUpstream.length > 0) this.#ahead(this.#upstream, fromUpstream);
  }

  #ahead(from: Leg, chunk: Buffer): void {
    this.#count(from, chunk.length);
    const guard = from.guard;
    if (guard === null) {
      from.other.write(chunk);
      return;
    }
    const pass = guard.feed(chunk);
    this.#session(from, guard);
    if (pass.length > 0) from.other.write(pass);
    if (guard.violation !== null) this.#refuse(from, guard);
  }

  /** The frame follower state of the bytes read from `leg`'s side, for the addon (null: no WebSocket). */
  cursorState(side: Leg['side']): number[] | null {
    return (side === 'client' ? this.#client : this.#upstream).guard?.state() ?? null;
  }

  /**
   * Whether the addon may take over: no frame header is held back half read (it has no way to get
   * it, nor a message held back for the rate), no pong to Sluice's ping is awaited nor a ping waiting
   * to go (the addon would not know it), and no guardrail has ended the tunnel. The addon starts
   * with full rate buckets, as a new tunnel does: the relay usually hands over at once.
   */
  get canHandOver(): boolean {
    if (this.#goingAway || this.#pinger?.busy === true) return false;
    return [this.#client, this.#upstream].every((leg) => leg.guard === null || (!leg.guard.holding && leg.guard.pongToken === null));
  }

  /** The session figures of the access log ($websocket_messages_*, $websocket_close_code). */
  #session(from: Leg, guard: FrameGuard): void {
    const ctx = this.#tunnel.ctx;
    if (from === this.#client) ctx.websocketMessagesIn = guard.messages;
    else ctx.websocketMessagesOut = guard.messages;
    if (guard.closeCode !== 0 && ctx.websocketClose === null) ctx.websocketClose = { code: guard.closeCode, side: from.side };
  }

  /** Starts relaying. `handOver`, when given, is asked again whenever Node's buffers may be empty. */
  start(handOver: HandOver | null = null): void {
    const client = this.#client;
    const upstream = this.#upstream;
    this.#handOver = handOver;
    client.attach();
    upstream.attach();
    // Reads and writes both reset a leg's timer, and every tunnelled byte is read from one leg and
    // written to the other, so the client leg's timer measures idleness both ways.
    client.setIdleTimeout(this.#idleTimeout);
    if (client.gone) this.legClosed(client);
    if (upstream.gone) this.legClosed(upstream);
    this.#wantsNative = handOver !== null;
    this.#pinger?.start();
    client.resume();
    upstream.resume();
  }

  /** The addon took the tunnel: the legs let go of their connections. */
  detach(): void {
    this.#stopTimers();
    this.#wantsNative = false;
    this.#client.detach();
    this.#upstream.detach();
  }

  destroy(): void {
    this.#stopTimers();
    this.#client.destroy();
    this.#upstream.destroy();
  }

  goAway(code: number): void {
    this.#stopTimers();
    this.#releaseHeld();
    this.#goingAway = true;
    // The direction from the upstream ends with the client's close frame.
    if (code !== CloseCode.GOING_AWAY) this.#upstream.closeFrame = goingAwayFrameToClient(code);
    this.#wantsNative = false;
    // A direction already ended (half-close) is done wherever its frame cursor stopped.
    for (const from of [this.#client, this.#upstream]) {
      if (from.guard === null || from.guard.atBoundary || from.other.writableEnded) this.#sendClose(from);
    }
  }

  #count(from: Leg, n: number): void {
    if (from === this.#client) this.#tunnel.ctx.bytesReceived += n;
    else this.#tunnel.ctx.bytesSent += n;
  }

  #retryNative(): void {
    const result = (this.#handOver as HandOver)();
    if (result !== 'not yet') this.#wantsNative = false;
  }

  legData(from: Leg, chunk: Buffer, counted = true): void {
    if (counted) this.#count(from, chunk.length);
    this.#pinger?.heard(from);
    if (this.#goingAway) {
      this.#relayUntilBoundary(from, chunk);
      return;
    }
    const guard = from.guard;
    if (guard !== null) {
      chunk = guard.feed(chunk);
      this.#session(from, guard);
      if (guard.violation !== null) {
        if (chunk.length > 0) from.other.write(chunk);
        this.#refuse(from, guard);
        return;
      }
      // The side whose close frame comes first ended the session (its FIN may come second).
      if (guard.closeSeen && !this.#tunnel.reason) this.#tunnel.reason = `${from.side} closed`;
      if (guard.blocked) this.#holdForRate(from);
      if (chunk.length === 0) return;
    }
    const pushed = from.other.write(chunk);
    if (this.#pinger !== null && (from.guard as FrameGuard).atBoundary) this.#pinger.atBoundary(from);
    if (!pushed) from.pause();
    else if (this.#wantsNative) this.#retryNative();
  }

  legDrained(leg: Leg): void {
    // A sender held back for websocket_message_rate stays paused until its timer.
    if (leg.other.guard?.blocked !== true) leg.other.resume();
    if (this.#wantsNative) this.#retryNative();
  }

  legEnded(from: Leg): void {
    // Messages held back for websocket_message_rate go first: the end waits for them.
    if (from.guard?.blocked === true) {
      from.endHeld = true;
      return;
    }
    const tunnel = this.#tunnel;
    if (!tunnel.reason) tunnel.reason = `${from.side} closed`;
    from.other.end();
    // Going away, this direction is done: its end stands for its close frame.
    if (this.#goingAway) this.#sendClose(from);
  }

  legFailed(leg: Leg, reason: string | null, replacesEnd: boolean): void {
    if (leg === this.#dead) return;
    const tunnel = this.#tunnel;
    if (reason !== null && (!tunnel.reason || (replacesEnd && tunnel.reason === `${leg.side} closed`))) tunnel.reason = reason;
    // Nothing more can be delivered either way.
    leg.other.abort();
  }

  legClosed(leg: Leg): void {
    if (leg.closed) return;
    leg.closed = true;
    const other = leg.other;
    if (!other.gone) {
      // Going away, once both directions are done and the other side has had its end, it is read
      // (its bytes dropped) until it ends too, as in the addon, rather than reset while it may
      // still be finishing what it sends; the going-away timer bounds the wait.
      if (this.#goingAway && leg.awayDone && other.awayDone && other.writableEnded) other.resume();
      else other.finish(this.#idleTimeout);
    }
    if (this.#client.closed && this.#upstream.closed) {
      this.#stopTimers();
      this.#tunnel.ended();
    }
  }

  legIdle(): void {
    this.#tunnel.destroy('idle timeout');
  }

  /**
   * A frame read from `sender` broke a limit: nothing more passes from it. The other side gets
   * close 1001 now (the direction from the sender is at a frame boundary: the frame was refused at
   * its header); the sender gets 1009 (RFC 6455 7.4.1, "a message that is too big for it to
   * process") once the frame in flight towards it is through. Then both ends, as going away.
   */
  #refuse(sender: Leg, guard: FrameGuard): void {
    const receiver = sender.other;
    if (guard.violation === 'rate') {
      this.#tunnel.refuse(rateRefusal(sender.side, (guard.gate as MessageRate).settings));
      receiver.closeFrame = encodeClose(CloseCode.POLICY_VIOLATION, 'message rate exceeded', sender.side === 'upstream');
    } else {
      const what = guard.violation === 'frame' ? 'frame' : 'message';
      this.#tunnel.refuse(sizeRefusal(sender.side, what, guard.violationSize, this.#limits as FrameLimits));
      receiver.closeFrame = encodeClose(CloseCode.MESSAGE_TOO_BIG, `${what} too big`, sender.side === 'upstream');
    }
    this.#stopTimers();
    this.#releaseHeld();
    this.#goingAway = true;
    this.#wantsNative = false;
    this.#sendClose(sender);
    if (receiver.guard === null || receiver.guard.atBoundary || sender.writableEnded) this.#sendClose(receiver);
  }

  #stopTimers(): void {
    this.#pinger?.stop();
    (this.#client.guard?.gate as MessageRate | null | undefined)?.stop();
    (this.#upstream.guard?.gate as MessageRate | null | undefined)?.stop();
  }

  /**
   * The tunnel is ending: messages held back for the rate are dropped with the rest of what the
   * sender still sends, and the sender is read again (to its end, as going away reads).
   */
  #releaseHeld(): void {
    for (const leg of [this.#client, this.#upstream]) {
      if (leg.guard?.blocked !== true) continue;
      leg.guard.advanceToBoundary(NOTHING);
      leg.resume();
    }
  }

  /** A message from `from` waits for websocket_message_rate: reading pauses until a token is due. */
  #holdForRate(from: Leg): void {
    from.pause();
    const rate = (from.guard as FrameGuard).gate as MessageRate;
    if (rate.timer === null) rate.timer = setTimeout(rateDue, rate.waitMs(), this, from);
  }

  /** @internal A token is due for the message held back from `from`: it (and what follows it) is fed again. */
  rateDue(from: Leg): void {
    const guard = from.guard as FrameGuard;
    ((guard.gate as MessageRate).timer) = null;
    if (this.#goingAway || from.gone || !guard.blocked) return;
    this.legData(from, NOTHING, false);
    if (!guard.blocked && from.endHeld) {
      from.endHeld = false;
      this.legEnded(from);
      return;
    }
    // Were the receiver full, the next write says so and pauses the sender again (one chunk at most).
    if (!guard.blocked && guard.violation === null && !from.other.gone) from.resume();
  }

  /**
   * `dead` sent nothing within websocket_ping_timeout of Sluice's ping. The other side gets close
   * 1001 (refusals.ts says why) where the direction from the dead side is between two frames (else only
   * its end), and the dead side is destroyed: nothing written to it would arrive.
   */
  #pingTimedOut(dead: Leg): void {
    this.#tunnel.refuse(pingRefusal(dead.side, this.#pings as PingSettings));
    this.#stopTimers();
    this.#releaseHeld();
    this.#goingAway = true;
    this.#wantsNative = false;
    const other = dead.other;
    if (dead.guard === null || dead.guard.atBoundary) this.#sendClose(dead);
    else dead.awayDone = true;
    other.awayDone = true;
    this.#dead = dead;
    dead.destroy();
  }

  /** Going away: relays a chunk up to the frame boundary, then the close frame. */
  #relayUntilBoundary(from: Leg, chunk: Buffer): void {
    if (from.awayDone) return;
    const cut = (from.guard as FrameGuard).advanceToBoundary(chunk);
    if (cut === -1) {
      from.other.write(chunk);
      return;
    }
    if (cut > 0) from.other.write(chunk.subarray(0, cut));
    this.#sendClose(from);
  }

  /**
   * Ends the direction read from `from` while going away: with its close frame, unless its receiver was ended already (the
   * source's end passed on, or the source gone), where a write would be a write after end, an
   * error that destroys both sides. Once both directions are done, both legs get their end.
   */
  #sendClose(from: Leg): void {
    if (from.awayDone) return;
    from.awayDone = true;
    const to = from.other;
    if (!to.writableEnded && !to.gone) to.write(from.closeFrame ?? goingAwayFrame(to.side === 'upstream'));
    if (this.#client.awayDone && this.#upstream.awayDone) {
      this.#client.end();
      this.#upstream.end();
    }
  }
}
