/**
 * The forward proxy's connection to a destination: the allowed addresses in turn (as nginx tries
 * the addresses of a resolved name), each under proxy_connect_timeout. Half-open allowed: a tunnel
 * relays each direction's end on its own.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { formatHostPort } from '../../config/address.js';
import type { SockAddr } from '../../config/types.js';
import { ProxyError, toProxyError } from '../../core/errors.js';
import type { UpstreamAttempt } from '../context/request-context.js';

/** A connected socket, or the last failure (every try is logged through `onFailure`). */
export type Dialled = { readonly socket: Socket } | { readonly error: ProxyError };

function dialOne(address: SockAddr, timeoutMs: number): Promise<Socket | ProxyError> {
  return new Promise((resolve) => {
    const s = connect({ host: address.host, port: address.port, family: address.family, allowHalfOpen: true, noDelay: true });
    const timer = timeoutMs > 0 ? setTimeout(() => done(new ProxyError('UPSTREAM_CONNECT_TIMEOUT')), timeoutMs) : null;
    function done(r: Socket | ProxyError): void {
      if (timer !== null) clearTimeout(timer);
      s.removeListener('connect', onConnect);
      s.removeListener('error', onError);
      if (r instanceof ProxyError) {
        s.on('error', noop);
        s.destroy();
      }
      resolve(r);
    }
    function onConnect(): void {
      done(s);
    }
    function onError(err: Error): void {
      done(toProxyError(err, 'UPSTREAM_CONNECT_FAILED'));
    }
    s.once('connect', onConnect);
    s.once('error', onError);
  });
}

function noop(): void {}

/**
 * Connects to the first address that answers; each try is recorded in `attempts`
 * (`$upstream_addr`, `$upstream_connect_time`) and a failed one reported to `onFailure`.
 */
export async function dial(
  addresses: readonly SockAddr[], timeoutMs: number, attempts: UpstreamAttempt[], onFailure: (addr: string, err: ProxyError) => void,
): Promise<Dialled> {
  let last: ProxyError = new ProxyError('UPSTREAM_CONNECT_FAILED');
  for (const address of addresses) {
    const addr = formatHostPort(address.host, address.port);
    const started = performance.now();
    const attempt: UpstreamAttempt = { addr, status: 0, connectTime: -1, headerTime: -1, responseTime: -1, bytesSent: 0, bytesReceived: 0 };
    attempts.push(attempt);
    const r = await dialOne(address, timeoutMs);
    attempt.responseTime = performance.now() - started;
    if (!(r instanceof ProxyError)) {
      attempt.connectTime = attempt.responseTime;
      return { socket: r };
    }
    attempt.status = r.status;
    last = r;
    onFailure(addr, r);
  }
  return { error: last };
}
