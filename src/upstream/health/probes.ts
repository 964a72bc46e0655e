import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { HealthCheckConfig, MatchConfig } from '../../config/types.js';
import { newKey } from '../../websocket/accept-key.js';
import { encodeClose } from '../../websocket/frame-writer.js';
import { checkServerHandshake } from '../../websocket/handshake.js';
import type { Peer } from '../peer.js';
import { checkMatch, needsBody } from './match.js';

/** A probe's verdict: null when healthy, else why not. */
export type ProbeVerdict = string | null;

/** Bodies read for `match ... body` are capped so a sick server cannot make a probe grow. */
export const PROBE_MAX_BODY = 256 * 1024;

/** Where a probe connects: the server's address (its port replaced by the check's `port=`), or its unix socket. */
function target(peer: Peer, check: HealthCheckConfig): { host: string; port: number; family: 4 | 6 } | { path: string } {
  const a = peer.server.address;
  if (a.path !== undefined) return { path: a.path };
  return { host: a.host, port: check.port ?? a.port, family: a.family };
}

/** The same for http.request, which names a unix socket `socketPath`. */
function httpTarget(peer: Peer, check: HealthCheckConfig): { host: string; port: number; family: 4 | 6 } | { socketPath: string } {
  const t = target(peer, check);
  return 'path' in t ? { socketPath: t.path } : t as { host: string; port: number; family: 4 | 6 };
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

/** `type=tcp`: the server accepts a connection. */
export function tcpProbe(peer: Peer, check: HealthCheckConfig, timeoutMs: number): Promise<ProbeVerdict> {
  return new Promise((resolve) => {
    const s: Socket = connect({ ...target(peer, check), timeout: timeoutMs });
    s.once('connect', () => {
      s.end();
      resolve(null);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve('connect timed out');
    });
    s.once('error', (err) => resolve(`connect failed (${errText(err)})`));
  });
}

/** `type=http`: GET uri answers 2xx/3xx, or passes the `match` block. */
export function httpProbe(peer: Peer, check: HealthCheckConfig, match: MatchConfig | null, timeoutMs: number): Promise<ProbeVerdict> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: ProbeVerdict): void => {
      if (done) return;
      done = true;
      req.destroy();
      resolve(v);
    };
    const req = request({
      ...httpTarget(peer, check), method: 'GET', path: check.uri, setHost: false, timeout: timeoutMs,
      headers: { Host: check.host, Connection: 'close', 'User-Agent': 'sluice-health-check' },
    });
    req.once('timeout', () => finish('timed out'));
    req.once('error', (err) => finish(`request failed (${errText(err)})`));
    req.once('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (!needsBody(match)) {
        res.resume();
        finish(match ? checkMatch(match, { status, headers: res.headers, body: '' }) : status >= 200 && status < 400 ? null : `status ${status}`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < PROBE_MAX_BODY) chunks.push(c.subarray(0, PROBE_MAX_BODY - size));
        size += c.length;
      });
      res.once('end', () => finish(checkMatch(match as MatchConfig, { status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })));
      res.once('error', (err) => finish(`response failed (${errText(err)})`));
    });
    req.end();
  });
}

/**
 * `type=websocket` (a Sluice extension): a real opening handshake to `uri` that must answer 101 with
 * the right Sec-WebSocket-Accept (and pass `match` status/header tests), then a clean close 1000.
 */
export function websocketProbe(peer: Peer, check: HealthCheckConfig, match: MatchConfig | null, timeoutMs: number): Promise<ProbeVerdict> {
  return new Promise((resolve) => {
    const key = newKey();
    let done = false;
    const finish = (v: ProbeVerdict): void => {
      if (done) return;
      done = true;
      resolve(v);
    };
    const req = request({
      ...httpTarget(peer, check), method: 'GET', path: check.uri, setHost: false, timeout: timeoutMs,
      headers: {
        Host: check.host, Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13', 'User-Agent': 'sluice-health-check',
      },
    });
    req.once('timeout', () => {
      req.destroy();
      finish('timed out');
    });
    req.once('error', (err) => finish(`handshake failed (${errText(err)})`));
    req.once('response', (res: IncomingMessage) => {
      res.resume();
      req.destroy();
      finish(`status ${res.statusCode ?? 0} instead of 101`);
    });
    req.once('upgrade', (res: IncomingMessage, socket: Socket) => {
      const hs = checkServerHandshake(key, res.statusCode, res.headers);
      const verdict = !hs.ok ? hs.reason : match ? checkMatch(match, { status: res.statusCode ?? 0, headers: res.headers, body: '' }) : null;
      socket.on('error', () => socket.destroy());
      // Close cleanly (RFC 6455 7.1.2): our masked close frame, then FIN; the server's reply is not awaited.
      socket.end(encodeClose(1000, '', true));
      socket.setTimeout(timeoutMs, () => socket.destroy());
      socket.resume();
      finish(verdict);
    });
    req.end();
  });
}
