/**
 * TLS to upstream servers (`proxy_pass https://`, ngx_http_proxy_module's proxy_ssl_*): what is
 * offered (ALPN http/1.1, so an upgrade stays on HTTP/1.1; SNI only with
 * `proxy_ssl_server_name on`, never for an IP address), what is verified (with `proxy_ssl_verify
 * on`: the chain against `proxy_ssl_trusted_certificate` or Node's CA list, and the name against
 * `proxy_ssl_name`), which sessions may be resumed, and how a failed handshake is worded in the
 * error log. Both upstream clients connect through upstream-connect.ts, which uses this.
 */
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext } from 'node:tls';
import type { ConnectionOptions, PeerCertificate, SecureContext } from 'node:tls';
import type { UpstreamTls } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import { protocolOptions } from '../../core/tls-versions.js';
import { applyConfCommands } from '../../config/tls-conf-command.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { RequestContext } from '../context/request-context.js';
import { VERIFY_ERROR_TEXT, chainTooLong } from '../context/ssl-info.js';
import type { Variables } from '../context/variables.js';

/** The TLS side of one upstream request: the location's settings and the name evaluated for it. */
export interface UpstreamTlsRequest {
  readonly tls: UpstreamTls;
  /** `proxy_ssl_name` (default: the proxy_pass host), without a port. */
  readonly name: string;
  /**
   * The TLS identity: the settings and the name. A keep-alive connection or a TLS session made
   * under one identity serves only requests with the same one: a resumed session skips both the
   * chain and the name check, so it must not cross to other settings or another name.
   */
  readonly identity: string;
}

/**
 * What one location's proxy_ssl_* settings make once, not per connection: the secure context
 * (certificates, CA list, protocols, ciphers parsed by OpenSSL; creating it per connection, as
 * tls.connect does without one, costs more than the rest of the handshake's JavaScript), or the
 * error it gave, and the number that names the settings in identities.
 */
interface TlsProfile {
  readonly id: number;
  readonly context: SecureContext | Error;
}

const profiles = new WeakMap<UpstreamTls, TlsProfile>();
let nextProfile = 0;

function profileOf(t: UpstreamTls): TlsProfile {
  let p = profiles.get(t);
  if (p === undefined) {
    let context: SecureContext | Error;
    try {
      const options = applyConfCommands(t.confCommands, { ciphers: t.ciphers, ...protocolOptions(t.protocols) });
      if (typeof options === 'string') throw new Error(`proxy_ssl_conf_command: ${options}`);
      context = createSecureContext({
        ...options,
        ...(t.ca === null ? {} : { ca: t.ca }),
        // Node turns on OpenSSL's CRL_CHECK | CRL_CHECK_ALL with the lists, as nginx's ngx_ssl_crl does.
        ...(t.crl === null ? {} : { crl: t.crl }),
        ...(t.certificate === null ? {} : {
          cert: t.certificate.cert,
          key: t.certificate.key,
          ...(t.certificate.passphrase === null ? {} : { passphrase: t.certificate.passphrase }),
        }),
      });
    } catch (err) {
      // A cipher list OpenSSL rejects (only ciphers are not checked at load): every handshake
      // under these settings fails, as nginx's would, instead of throwing in the data plane.
      context = err instanceof Error ? err : new Error(String(err));
    }
    p = { id: ++nextProfile, context };
    profiles.set(t, p);
  }
  return p;
}

/** "host" from "host", "host:port", "[v6]" or "[v6]:port" (nginx strips the port from the name). */
function withoutPort(name: string): string {
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    return end === -1 ? name : name.slice(1, end);
  }
  const colon = name.indexOf(':');
  return colon === -1 || name.indexOf(':', colon + 1) !== -1 ? name : name.slice(0, colon);
}

/** The TLS part of a request to this route's upstream, or null for `http://`. */
export function upstreamTlsFor(route: ProxyRoute, ctx: RequestContext, vars: Variables): UpstreamTlsRequest | null {
  const tls = route.pass.tls;
  if (tls === null) return null;
  const name = withoutPort(tls.name === null ? route.pass.proxyHost : vars.evaluate(tls.name, ctx));
  return { tls, name, identity: `${profileOf(tls).id}|${name}` };
}

/** ALPN "http/1.1" in wire format (RFC 7301 3.1), built once instead of on every connect. */
const ALPN_HTTP1 = Buffer.from('\x08http/1.1', 'latin1');

/**
 * tls.connect options for one connection under `r` (without the address), or the error every
 * handshake under these settings ends in.
 */
export function tlsConnectOptions(r: UpstreamTlsRequest, session: Buffer | undefined): ConnectionOptions | Error {
  const { context } = profileOf(r.tls);
  if (context instanceof Error) return context;
  const name = r.name;
  return {
    secureContext: context,
    ALPNProtocols: ALPN_HTTP1,
    rejectUnauthorized: r.tls.verify,
    // OpenSSL checks the chain first (the depth included, which Node cannot set), then nginx
    // checks proxy_ssl_name, whether or not it is sent as SNI.
    checkServerIdentity: (_host: string, cert: PeerCertificate) => chainTooLong(cert, r.tls.verifyDepth) ?? checkServerIdentity(name, cert),
    // RFC 6066 3: SNI carries host names only, never an address.
    servername: r.tls.serverName && isIP(name) === 0 && name !== '' ? name : '',
    ...(session === undefined ? {} : { session }),
  };
}

/**
 * TLS sessions to resume, one per server and TLS identity (nginx's `proxy_ssl_session_reuse on`,
 * its default, keeps one per upstream server and replaces it after each handshake). Bounded: a
 * `proxy_ssl_name` made of variables could name any number of identities.
 */
export class TlsSessions {
  static readonly MAX = 1024;
  readonly #sessions = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    this.#sessions.delete(key);
    if (this.#sessions.size >= TlsSessions.MAX) {
      const oldest = this.#sessions.keys().next();
      if (oldest.done !== true) this.#sessions.delete(oldest.value);
    }
    this.#sessions.set(key, session);
  }

  /** Forgets `session` (a handshake that offered it failed), unless a newer one replaced it. */
  forget(key: string, session: Buffer): void {
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
  }

  get size(): number {
    return this.#sessions.size;
  }
}

/**
 * A failure before the TLS handshake with an upstream completed, as nginx words it, or null when
 * `err` is not a TLS failure (a refused connection stays a connect failure).
 */
export function upstreamTlsFailure(err: unknown): ProxyError | null {
  if (err instanceof ProxyError) return null;
  const e = err as (NodeJS.ErrnoException & { reason?: string; library?: string }) | null;
  const code = e?.code ?? '';
  const known = VERIFY_ERROR_TEXT[code];
  if (known !== undefined) {
    return new ProxyError('UPSTREAM_TLS_VERIFY_FAILED', undefined, { cause: err, errno: `${known[0]}:${known[1]}` });
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    // nginx: upstream SSL certificate does not match "NAME" (checkServerIdentity's error carries the name as `host`).
    const host = (err as { host?: string }).host ?? '';
    return new ProxyError('UPSTREAM_TLS_VERIFY_FAILED', undefined, { cause: err, errno: `certificate does not match "${host}"` });
  }
  if (code.startsWith('ERR_SSL_') || e?.library !== undefined) {
    return new ProxyError('UPSTREAM_TLS_HANDSHAKE_FAILED', undefined, { cause: err, errno: `SSL: ${e?.library ?? 'SSL routines'}::${e?.reason ?? e?.message ?? code}` });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new ProxyError('UPSTREAM_TLS_HANDSHAKE_FAILED', undefined, { cause: err, errno: `peer closed connection in SSL handshake (${code})` });
  }
  return null;
}

/**
 * The settings themselves could not make a TLS connection (tlsConnectOptions' error): the
 * handshake that never started is reported as a failed one.
 */
export function tlsSetupFailure(err: Error): ProxyError {
  return upstreamTlsFailure(err)
    ?? new ProxyError('UPSTREAM_TLS_HANDSHAKE_FAILED', undefined, { cause: err, errno: `SSL: ${err.message}` });
}
