/**
 * TLS contexts for one config generation: one SecureContext per server with certificates, built
 * once from the PEM text the control plane read, and the choice nginx makes for a handshake
 * (SNI through the server_name rules of the address, else the address's default server).
 */
import { constants } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Config, ServerConfig, SslSettings } from '../config/types.js';
import { protocolOptions } from '../core/tls-versions.js';
import { applyConfCommands, type ConfCommandOptions } from '../config/tls-conf-command.js';
import type { ListenerRoutes } from '../routing/router.js';
import { processTicketKey } from './tls-ticket-keys.js';

/**
 * The protocol, cipher, curve and option settings of a server, with its `ssl_conf_command` lines
 * applied after them as nginx applies them (checked at load, src/config/tls.ts).
 */
export function serverConfCommands(ssl: SslSettings): ConfCommandOptions {
  const p = protocolOptions(ssl.protocols);
  let secureOptions = p.secureOptions;
  if (!ssl.sessionTickets) secureOptions |= constants.SSL_OP_NO_TICKET;
  const base = { ciphers: ssl.ciphers, secureOptions, minVersion: p.minVersion, maxVersion: p.maxVersion, ecdhCurve: ssl.ecdhCurve };
  const applied = applyConfCommands(ssl.confCommands, base);
  return typeof applied === 'string' ? base : applied;
}

/** createSecureContext options for a server (certificates, protocols, ciphers, sessions, client CA). */
export function serverContextOptions(server: ServerConfig): SecureContextOptions | null {
  const tls = server.tls;
  if (tls === null) return null;
  const ssl: SslSettings = server.settings.ssl;
  const commands = serverConfCommands(ssl);
  return {
    cert: tls.certificates.map((c) => c.cert),
    key: tls.certificates.map((c) => (c.passphrase === null ? { pem: c.key } : { pem: c.key, passphrase: c.passphrase })),
    ...commands,
    honorCipherOrder: ssl.preferServerCiphers,
    sessionTimeout: Math.max(1, Math.round(ssl.sessionTimeout / 1000)),
    sessionIdContext: tls.sessionIdContext,
    ticketKeys: tls.ticketKeys === null ? processTicketKey() : Buffer.from(tls.ticketKeys, 'hex'),
    ...(tls.dhparam === null ? {} : { dhparam: tls.dhparam }),
    ...(tls.clientCa === null ? {} : { ca: tls.clientCa }),
    ...(tls.crl === null ? {} : { crl: tls.crl }),
  };
}

/** The contexts of one config, built on first use. */
export class TlsContexts {
  readonly config: Config;
  readonly #contexts = new Map<ServerConfig, SecureContext | null>();
  readonly #clientCert = new Map<string, boolean>();
  readonly #h2Listen = new Map<string, boolean>();

  constructor(config: Config) {
    this.config = config;
  }

  /** The server's context; null when it has no certificates. */
  contextFor(server: ServerConfig): SecureContext | null {
    let ctx = this.#contexts.get(server);
    if (ctx === undefined) {
      const options = serverContextOptions(server);
      ctx = options === null ? null : createSecureContext(options);
      this.#contexts.set(server, ctx);
    }
    return ctx;
  }

  /**
   * nginx's choice of server for a handshake: by SNI name with the address's server_name rules,
   * the default server when there is no name or no match (or the match has no certificate).
   */
  serverFor(routes: ListenerRoutes, serverName: string | null): ServerConfig {
    if (serverName) {
      const s = routes.group.select(serverName.toLowerCase().replace(/\.$/, '')).server;
      if (s.tls !== null) return s;
    }
    return routes.group.defaultServer;
  }

  /** Whether any server of the address asks for client certificates (then every handshake there requests one). */
  requestsClientCert(key: string): boolean {
    let v = this.#clientCert.get(key);
    if (v === undefined) {
      v = (this.config.http?.servers ?? []).some((s) => s.listens.some((l) => l.key === key) && s.settings.ssl.verifyClient !== 'off');
      this.#clientCert.set(key, v);
    }
    return v;
  }

  /** Whether HTTP/2 is offered to a client of this server on this address (`listen ... http2` or `http2 on`). */
  offersHttp2(key: string, server: ServerConfig): boolean {
    if (server.settings.http2) return true;
    let v = this.#h2Listen.get(key);
    if (v === undefined) {
      v = (this.config.http?.servers ?? []).some((s) => s.listens.some((l) => l.key === key && l.http2));
      this.#h2Listen.set(key, v);
    }
    return v;
  }
}

const byConfig = new WeakMap<Config, TlsContexts>();

/** The contexts of a config generation (cached, so a reload builds new ones from the new files). */
export function tlsContextsFor(config: Config): TlsContexts {
  let c = byConfig.get(config);
  if (c === undefined) byConfig.set(config, c = new TlsContexts(config));
  return c;
}
