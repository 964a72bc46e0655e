/**
 * TLS to upstream servers (`proxy_pass https://`, ngx_http_proxy_module's proxy_ssl_*): how the
 * connection is made (a fresh tls.connect, or an https.Agent per upstream with `keepalive`), what
 * is offered (ALPN http/1.1, so an upgrade stays on HTTP/1.1; SNI only with
 * `proxy_ssl_server_name on`, never for an IP address), what is verified (with `proxy_ssl_verify
 * on`: the chain against `proxy_ssl_trusted_certificate` or Node's CA list, and the name against
 * `proxy_ssl_name`), and how a failed handshake is worded in the error log.
 */
import type { RequestOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, connect as netConnect } from 'node:net';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import type { SockAddr, UpstreamTls } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import { protocolOptions } from '../../core/tls-versions.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { RequestContext } from '../context/request-context.js';
import { VERIFY_ERROR_TEXT } from '../context/ssl-info.js';
import type { Variables } from '../context/variables.js';

/** The TLS side of one upstream request: the location's settings and the name evaluated for it. */
export interface UpstreamTlsRequest {
  readonly tls: UpstreamTls;
  /** `proxy_ssl_name` (default: the proxy_pass host), without a port. */
  readonly name: string;
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
  const name = tls.name === null ? route.pass.proxyHost : vars.evaluate(tls.name, ctx);
  return { tls, name: withoutPort(name) };
}

/** Node's client options for the handshake. */
export function tlsClientOptions(r: UpstreamTlsRequest): ConnectionOptions {
  const t = r.tls;
  const name = r.name;
  // RFC 6066 3: SNI carries host names only, never an address.
  const sni = t.serverName && isIP(name) === 0 && name !== '' ? name : '';
  return {
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: t.verify,
    // The name nginx verifies is proxy_ssl_name, whether or not it is sent as SNI.
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert),
    servername: sni,
    ciphers: t.ciphers,
    ...protocolOptions(t.protocols),
    ...(t.ca === null ? {} : { ca: t.ca }),
    ...(t.certificate === null ? {} : {
      cert: t.certificate.cert,
      key: t.certificate.key,
      ...(t.certificate.passphrase === null ? {} : { passphrase: t.certificate.passphrase }),
    }),
  };
}

/** https agents for upstreams with `keepalive`, beside the pool's plain one (keyed by the TLS options, as Node does). */
const tlsAgents = new WeakMap<UpstreamPool, HttpsAgent>();

function tlsAgentFor(pool: UpstreamPool): HttpsAgent {
  let agent = tlsAgents.get(pool);
  if (agent === undefined) {
    agent = new HttpsAgent({
      keepAlive: true, maxFreeSockets: pool.config.keepalive, timeout: pool.config.keepaliveTimeout, scheduling: 'lifo',
    });
    tlsAgents.set(pool, agent);
    // The pool closes it with its own agent (idle connections on reload, all of them on shutdown).
    pool.extraAgents.add(agent);
  }
  return agent;
}

/**
 * The connection part of `http.request` options: the pool's keepalive agent, or a connection of
 * its own (half-open capable for an upgrade); over TLS when `tls` is given.
 */
export function transportOptions(pool: UpstreamPool, address: SockAddr, upgrade: boolean, tls: UpstreamTlsRequest | null): Partial<RequestOptions> {
  const where = { host: address.host, port: address.port, family: address.family };
  if (tls === null) {
    return pool.agent
      ? { agent: pool.agent }
      : { createConnection: () => netConnect({ ...where, allowHalfOpen: upgrade, noDelay: true }) };
  }
  const options = tlsClientOptions(tls);
  if (pool.agent) return { ...options, agent: tlsAgentFor(pool), protocol: 'https:' } as Partial<RequestOptions>;
  // tls.connect passes allowHalfOpen to its socket (a tunnel relays each direction's FIN on its own).
  const connectOptions = { ...options, ...where, allowHalfOpen: upgrade, noDelay: true } as ConnectionOptions;
  return { createConnection: () => tlsConnect(connectOptions) };
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
