/**
 * How both upstream clients open a connection to an upstream server (TCP, then TLS for
 * `https://`), and the key under which a kept connection or a TLS session may stand in for a new
 * one: the server's address, and for TLS the identity (settings and name) it was made under.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { SockAddr } from '../../config/types.js';
import { tlsConnectOptions } from './upstream-tls.js';
import type { TlsSessions, UpstreamTlsRequest } from './upstream-tls.js';

/**
 * Each server address's own part of its keys, made at its first use: a plain connection's key is
 * then no new string per request (an address is a config object, kept as long as its upstream).
 */
const addressKeys = new WeakMap<SockAddr, string>();

/** The keep-alive cache and TLS session key of a connection to `address` under `tls`. */
export function connectionKey(address: SockAddr, tls: UpstreamTlsRequest | null): string {
  let where = addressKeys.get(address);
  if (where === undefined) {
    where = address.path !== undefined ? `unix:${address.path}` : `${address.host}|${address.port}`;
    addressKeys.set(address, where);
  }
  return tls === null ? where : `${where}|${tls.identity}`;
}

const kSession = Symbol('sluice.tlsSession');

/** A TLS connection's part in session reuse. */
interface SessionSlot {
  readonly sessions: TlsSessions;
  readonly key: string;
  /** The session this connection offered to resume. */
  readonly offered: Buffer | undefined;
  /** The handshake completed, verification included. */
  secure: boolean;
  /** A session issued before then (TLS 1.2 may issue it inside the handshake). */
  pending: Buffer | null;
}

type SessionSocket = TLSSocket & { [kSession]?: SessionSlot };

/**
 * A session the server issued. Kept only from a connection whose handshake completed: resuming
 * skips verification, so a session from a handshake that failed it must never be offered.
 */
function tlsOnSession(this: SessionSocket, session: Buffer): void {
  const slot = this[kSession];
  if (slot === undefined) return;
  if (slot.secure) slot.sessions.set(slot.key, session);
  else slot.pending = session;
}

function tlsOnSecure(this: SessionSocket): void {
  const slot = this[kSession];
  if (slot === undefined) return;
  slot.secure = true;
  if (slot.pending !== null) slot.sessions.set(slot.key, slot.pending);
  slot.pending = null;
}

/** A handshake that offered a session and failed: the next one starts afresh (as https.Agent does). */
function tlsOnClose(this: SessionSocket, hadError: boolean): void {
  const slot = this[kSession];
  if (slot === undefined) return;
  this[kSession] = undefined;
  if (hadError && !slot.secure && slot.offered !== undefined) slot.sessions.forget(slot.key, slot.offered);
}

/**
 * A new connection to `address`: plain TCP, or for `tls` a TLS connection that offers the session
 * kept under `key` and keeps those the server issues (unless `proxy_ssl_session_reuse off`). The connection is up on 'connect' (TCP) or
 * 'secureConnect' (TLS: after the handshake and verification, as nginx counts connect time).
 * `halfOpen`: each direction may end on its own (a tunnel relays each FIN). An Error, not a
 * throw, when these TLS settings cannot make a connection at all.
 */
export function connectUpstream(
  address: SockAddr, tls: UpstreamTlsRequest | null, key: string, sessions: TlsSessions, halfOpen: boolean,
): Socket | Error {
  const where = address.path !== undefined ? { path: address.path } : { host: address.host, port: address.port, family: address.family };
  if (tls === null) return netConnect({ ...where, allowHalfOpen: halfOpen, noDelay: true });
  const reuse = tls.tls.sessionReuse;
  const offered = reuse ? sessions.get(key) : undefined;
  const options = tlsConnectOptions(tls, offered);
  if (options instanceof Error) return options;
  // tls.connect passes allowHalfOpen to its socket (Node's types leave it out), but not noDelay.
  const s = tlsConnect({ ...options, ...where, allowHalfOpen: halfOpen } as unknown as ConnectionOptions) as SessionSocket;
  s.setNoDelay(true);
  if (!reuse) return s;
  s[kSession] = { sessions, key, offered, secure: false, pending: null };
  s.on('session', tlsOnSession);
  s.once('secureConnect', tlsOnSecure);
  s.once('close', tlsOnClose);
  return s;
}
