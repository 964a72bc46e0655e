/**
 * The TLS part of the control plane: defaults and merging of the `ssl_*` and `proxy_ssl_*`
 * settings, reading certificates and keys when the config is loaded (so `sluice -t` reports a
 * missing file, a key that does not open or does not match its certificate, and an `ssl` listen
 * without a certificate, each with file:line), and the checks across servers that share an ssl
 * address. The data plane gets PEM text and never touches the disk.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { protocolOptions } from '../core/tls-versions.js';
import { applyConfCommands, type ConfCommandBase } from './tls-conf-command.js';
import type { BuildContext } from './build-context.js';
import { defaultServers } from './default-server.js';
import { openFailedMessage } from './include.js';
import { mergeEach } from './merge.js';
import { PATH_HINT, PEM_CERT, cacheOf, problemOnce, readCertificates, readCrl, readFailure, readText } from './tls-files.js';
import { loadStapling } from './ocsp-stapling.js';
import { loadDhparam } from './tls-key-exchange.js';
import { loadTicketKeys, sessionIdContext } from './tls-sessions.js';
import type {
  ConfigFileRef, Listen, LoadedCertificate, ProxySslSettings, ServerTls, SourceLoc, SslConfCommand, SslSettings, UpstreamTls,
} from './types.js';

/** nginx's defaults for ngx_http_ssl_module (1.23.4 and later for the protocols). */
export const SSL_DEFAULTS: SslSettings = Object.freeze<SslSettings>({
  certificates: [],
  certificateKeys: [],
  protocols: ['TLSv1.2', 'TLSv1.3'],
  ciphers: 'HIGH:!aNULL:!MD5',
  preferServerCiphers: false,
  sessionTimeout: 300_000,
  sessionTickets: true,
  passwordFile: null,
  clientCertificate: null,
  verifyClient: 'off',
  verifyDepth: 1,
  crl: null,
  confCommands: [],
  sslOn: null,
  sessionCache: 'none',
  sessionCacheShared: null,
  sessionTicketKeys: [],
  dhparam: null,
  ecdhCurve: 'auto',
  stapling: false,
  staplingVerify: false,
  staplingFile: null,
  staplingResponder: null,
  trustedCertificate: null,
  bufferSize: 16384,
});

/** nginx's defaults for the proxy_ssl_* directives. */
export const PROXY_SSL_DEFAULTS: ProxySslSettings = Object.freeze<ProxySslSettings>({
  verify: false,
  trustedCertificate: null,
  serverName: false,
  name: null,
  certificate: null,
  certificateKey: null,
  protocols: ['TLSv1.2', 'TLSv1.3'],
  ciphers: 'DEFAULT',
  passwordFile: null,
  sessionReuse: true,
  verifyDepth: 1,
  crl: null,
  confCommands: [],
});

/** nginx merges each ssl directive on its own: a value written at this level wins. */
export function mergeSsl(parent: SslSettings, own: Partial<SslSettings> | undefined): SslSettings {
  return mergeEach(parent, own);
}

export function mergeProxySsl(parent: ProxySslSettings, own: Partial<ProxySslSettings> | undefined): ProxySslSettings {
  return mergeEach(parent, own);
}

/** nginx's ssl_password_file: one pass phrase per line, tried in order. */
function readPasswords(cx: BuildContext, ref: ConfigFileRef | null): string[] | null {
  if (ref === null) return [];
  const r = readText(cx, ref.path);
  if ('error' in r) {
    problemOnce(cx, openFailedMessage(ref.path, r.error), ref.loc, PATH_HINT);
    return null;
  }
  const lines = r.text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) {
    problemOnce(cx, `empty file "${ref.path}"`, ref.loc, 'write one pass phrase per line');
    return null;
  }
  return lines;
}

/** Opens a private key, trying each pass phrase as nginx does; null (reported) when none works. */
function openKey(
  cx: BuildContext, ref: ConfigFileRef, passwords: readonly string[], passwordDirective: string,
): { pem: string; key: KeyObject; passphrase: string | null } | null {
  const r = readText(cx, ref.path);
  if ('error' in r) {
    problemOnce(cx, `cannot load certificate key "${ref.path}": ${readFailure(ref.path, r.error)}`, ref.loc, PATH_HINT);
    return null;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(r.text)) {
    problemOnce(cx, `cannot load certificate key "${ref.path}": PEM_read_bio_PrivateKey() failed (no start line)`, ref.loc,
      `"${ref.path}" must hold a PEM private key ("-----BEGIN PRIVATE KEY-----")`);
    return null;
  }
  const encrypted = /ENCRYPTED/.test(r.text);
  const tries: (string | null)[] = encrypted ? [...passwords] : [null];
  if (encrypted && tries.length === 0) {
    problemOnce(cx, `cannot load certificate key "${ref.path}": the key is encrypted and no pass phrase was given`, ref.loc,
      `write its pass phrase in a file and name it with "${passwordDirective} FILE;"`);
    return null;
  }
  let last: unknown = null;
  for (const passphrase of tries) {
    try {
      const key = createPrivateKey(passphrase === null ? { key: r.text } : { key: r.text, passphrase });
      return { pem: r.text, key, passphrase };
    } catch (error) {
      last = error;
    }
  }
  // A wrong pass phrase decrypts to garbage: OpenSSL says "bad decrypt" when the padding check
  // fails, and a decoder error in the rare case (about 1 in 256) where the garbage happens to be
  // well padded. Either way no pass phrase opened the key, which is what nginx's line says.
  const reason = encrypted || (last as NodeJS.ErrnoException | null)?.code === 'ERR_OSSL_BAD_DECRYPT' ? 'bad decrypt' : (last as Error).message;
  problemOnce(cx, `cannot load certificate key "${ref.path}": PEM_read_bio_PrivateKey() failed (${reason})`, ref.loc,
    encrypted ? `none of the pass phrases in "${passwordDirective}" opens this key` : undefined);
  return null;
}

/** A certificate and its key, read and matched (nginx: SSL_CTX_use_PrivateKey ... key values mismatch). */
function loadPair(
  cx: BuildContext, certRef: ConfigFileRef, keyRef: ConfigFileRef, passwordFile: ConfigFileRef | null, passwordDirective: string,
): LoadedCertificate | null {
  const cache = cacheOf(cx);
  const id = `${certRef.path}\0${keyRef.path}\0${passwordFile?.path ?? ''}`;
  if (cache.pairs.has(id)) return cache.pairs.get(id) ?? null;
  let result: LoadedCertificate | null = null;
  const cert = readCertificates(cx, certRef, 'certificate');
  const passwords = readPasswords(cx, passwordFile);
  const key = passwords === null ? null : openKey(cx, keyRef, passwords, passwordDirective);
  if (cert !== null && key !== null) {
    if (cert.first.checkPrivateKey(key.key)) {
      result = { certFile: certRef.path, keyFile: keyRef.path, cert: cert.pem, key: key.pem, passphrase: key.passphrase };
    } else {
      problemOnce(cx, `SSL_CTX_use_PrivateKey("${keyRef.path}") failed (key values mismatch)`, keyRef.loc,
        `the key does not belong to the certificate "${certRef.path}"; pair each ssl_certificate with its own key, in the same order`);
    }
  }
  cache.pairs.set(id, result);
  return result;
}

/**
 * Reads the certificates of a server (called for every server with `ssl_certificate`, as nginx
 * loads them whether or not the server listens with ssl). Null when it has none or one failed
 * (the failure is reported).
 */
export function loadServerTls(ssl: SslSettings, serverLoc: SourceLoc, cx: BuildContext): ServerTls | null {
  if (ssl.certificates.length === 0) return null;
  const certificates: LoadedCertificate[] = [];
  let ok = true;
  ssl.certificates.forEach((certRef, i) => {
    const keyRef = ssl.certificateKeys[i];
    if (keyRef === undefined) {
      problemOnce(cx, `no "ssl_certificate_key" is defined for certificate "${certRef.path}"`, certRef.loc,
        'add "ssl_certificate_key FILE;" next to it (keys pair with certificates in order)');
      ok = false;
      return;
    }
    const pair = loadPair(cx, certRef, keyRef, ssl.passwordFile, 'ssl_password_file');
    if (pair === null) ok = false;
    else certificates.push(pair);
  });
  let clientCa: string | null = null;
  if (ssl.clientCertificate !== null) {
    const ca = readCertificates(cx, ssl.clientCertificate, 'client certificates');
    if (ca === null) ok = false;
    else clientCa = ca.pem;
  } else if (ssl.verifyClient === 'on' || ssl.verifyClient === 'optional') {
    problemOnce(cx, 'no ssl_client_certificate for ssl_verify_client', serverLoc,
      'name the CA certificates that client certificates must chain to with "ssl_client_certificate FILE;"');
    ok = false;
  }
  // ssl_trusted_certificate joins the store that verifies clients and OCSP answers, but unlike
  // ssl_client_certificate its names are never sent to clients (nginx).
  let trusted = '';
  if (ssl.trustedCertificate !== null) {
    const t = readCertificates(cx, ssl.trustedCertificate, 'trusted certificates');
    if (t === null) ok = false;
    else trusted = t.pem;
  }
  const dhparam = ssl.dhparam === null ? null : loadDhparam(cx, ssl.dhparam);
  if (ssl.dhparam !== null && dhparam === null) ok = false;
  const ticketKeys = loadTicketKeys(cx, ssl.sessionTicketKeys);
  if (ticketKeys === false) ok = false;
  const stapling = ok ? loadStapling(cx, ssl, certificates, [trusted, clientCa ?? ''].join('\n'), serverLoc) : [];
  const crl = ssl.crl === null ? null : readCrl(cx, ssl.crl);
  if (ssl.crl !== null && crl === null) ok = false;
  if (!confCommandsApply('ssl_conf_command', ssl.confCommands, { ciphers: ssl.ciphers, ...protocolOptions(ssl.protocols), ecdhCurve: ssl.ecdhCurve }, serverLoc, cx)) ok = false;
  if (stapling === false || !ok) return null;
  const verifyCa = clientCa === null ? null : distinctCertificates(trusted === '' ? clientCa : `${clientCa}\n${trusted}`);
  return {
    certificates, clientCa: verifyCa, dhparam, ticketKeys: ticketKeys as string | null,
    sessionIdContext: sessionIdContext(certificates, verifyCa, ssl.verifyClient), stapling, crl,
  };
}

/** The TLS material of a location that proxies to `https://`. Null (reported) when a file failed. */
export function loadUpstreamTls(p: ProxySslSettings, cx: BuildContext, at: SourceLoc): UpstreamTls | null {
  let ok = true;
  let ca: string | null = null;
  if (p.trustedCertificate !== null) {
    const r = readCertificates(cx, p.trustedCertificate, 'trusted certificates');
    if (r === null) ok = false;
    else ca = r.pem;
  }
  let certificate: LoadedCertificate | null = null;
  if (p.certificate !== null) {
    if (p.certificateKey === null) {
      problemOnce(cx, `no "proxy_ssl_certificate_key" is defined for certificate "${p.certificate.path}"`, p.certificate.loc,
        'add "proxy_ssl_certificate_key FILE;" with the key of this client certificate');
      ok = false;
    } else {
      certificate = loadPair(cx, p.certificate, p.certificateKey, p.passwordFile, 'proxy_ssl_password_file');
      if (certificate === null) ok = false;
    }
  }
  const crl = p.crl === null ? null : readCrl(cx, p.crl);
  if (p.crl !== null && crl === null) ok = false;
  if (!confCommandsApply('proxy_ssl_conf_command', p.confCommands, { ciphers: p.ciphers, ...protocolOptions(p.protocols) }, at, cx)) ok = false;
  if (!ok) return null;
  return {
    verify: p.verify, ca, serverName: p.serverName, name: p.name, certificate, protocols: p.protocols, ciphers: p.ciphers,
    sessionReuse: p.sessionReuse, verifyDepth: p.verifyDepth, crl, confCommands: p.confCommands,
  };
}

/**
 * Each command was checked on its own line; together with the other settings of the context they
 * must still make one (MinProtocol above MaxProtocol, a cipher list left empty).
 */
function confCommandsApply(name: string, commands: readonly SslConfCommand[], base: ConfCommandBase, at: SourceLoc, cx: BuildContext): boolean {
  if (commands.length === 0) return true;
  const options = applyConfCommands(commands, base);
  let why = typeof options === 'string' ? options : '';
  if (typeof options !== 'string') {
    try {
      createSecureContext(options);
    } catch (error) {
      why = (error as Error).message;
    }
  }
  if (why === '') return true;
  problemOnce(cx, `the "${name}" lines cannot be applied: ${why}`, at, 'check the commands against the ssl_protocols / ssl_ciphers settings of the same level');
  return false;
}

/** A Sluice warning, once per message and place (several servers may inherit one `ssl on`). */
function warnOnce(cx: BuildContext, message: string, at: SourceLoc, hint: string): void {
  const cache = cacheOf(cx);
  const key = `warn\0${message}\0${at.file}\0${at.line}`;
  if (cache.reported.has(key)) return;
  cache.reported.add(key);
  cx.warn(message, at, hint);
}

interface TlsServer {
  readonly listens: readonly Listen[];
  readonly settings: { readonly ssl: SslSettings };
  readonly loc: SourceLoc;
}

/**
 * nginx's `ssl on` (ngx_http_init_connection): a connection is TLS when its address has a
 * `listen ... ssl`, or when the address's default server has `ssl on` (its own or inherited from
 * http). `ssl on` in another server of the address changes nothing there: nginx serves that
 * server plain HTTP, silently; Sluice warns. Returns the servers with the listens that `ssl on`
 * makes TLS marked `ssl`, and reports a server with `ssl on` but no certificate as nginx does
 * (ngx_http_ssl_merge_srv_conf), at the `ssl` line.
 */
export function applySslOn<S extends TlsServer>(servers: readonly S[], cx: BuildContext): S[] {
  const defaults = defaultServers(servers);
  const tlsKeys = new Set<string>();
  for (const s of servers) for (const l of s.listens) if (l.ssl) tlsKeys.add(l.key);
  for (const [key, s] of defaults) if (s.settings.ssl.sslOn !== null) tlsKeys.add(key);
  return servers.map((s) => {
    const on = s.settings.ssl.sslOn;
    if (on === null) return s;
    if (s.settings.ssl.certificates.length === 0) {
      problemOnce(cx, 'no "ssl_certificate" is defined for the "ssl" directive', on,
        'add "ssl_certificate FILE;" and "ssl_certificate_key FILE;" to this server (or to http {} for every server)');
    }
    const listens = s.listens.map((l) => {
      if (defaults.get(l.key) === s) return l.ssl ? l : { ...l, ssl: true };
      if (!tlsKeys.has(l.key)) {
        warnOnce(cx, `the "ssl" directive does not make ${l.key} TLS: another server is its default server`, on,
          `as in nginx, "ssl on" applies only where its server is the default server, so ${l.key} serves plain HTTP, `
          + `this server included; write "listen ${l.key} ssl;" to make the address TLS (every server on it then needs a certificate)`);
      }
      return l;
    });
    return { ...s, listens };
  });
}

/**
 * Checks across servers, per address (nginx ORs `ssl` and `http2` over every listen of an
 * address): every server on an ssl address needs a certificate (nginx's `no "ssl_certificate" is
 * defined for the "listen ... ssl" directive`, at the server's line), and `http2` needs `ssl`
 * (HTTP/2 without TLS, h2c, is not implemented).
 */
export function checkSslListens(
  servers: readonly { readonly listens: readonly Listen[]; readonly settings: { readonly ssl: SslSettings }; readonly loc: SourceLoc }[],
  cx: BuildContext,
): void {
  const sslKeys = new Set<string>();
  const h2: Listen[] = [];
  for (const s of servers) {
    for (const l of s.listens) {
      if (l.ssl) sslKeys.add(l.key);
      if (l.http2) h2.push(l);
    }
  }
  for (const l of h2) {
    if (!sslKeys.has(l.key)) {
      problemOnce(cx, 'the "http2" parameter of the "listen" directive needs "ssl"', l.loc,
        'HTTP/2 without TLS (h2c) is not implemented; write "listen ... ssl http2" with a certificate, or remove "http2"');
    }
  }
  for (const s of servers) {
    // A server with `ssl on` and no certificate was reported at its `ssl` line (applySslOn).
    if (s.settings.ssl.certificates.length > 0 || s.settings.ssl.sslOn !== null) continue;
    if (s.listens.some((l) => sslKeys.has(l.key))) {
      problemOnce(cx, 'no "ssl_certificate" is defined for the "listen ... ssl" directive', s.loc,
        'add "ssl_certificate FILE;" and "ssl_certificate_key FILE;" to this server (or to http {} for every server)');
    }
  }
}

/**
 * The PEM certificates of `pem`, each once (by its DER bytes), in order. Node names every `ca`
 * certificate in the client-certificate request, so a CA in both ssl_client_certificate and
 * ssl_trusted_certificate (or twice in one file) would be named twice; nginx names it once.
 */
export function distinctCertificates(pem: string): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const block of pem.match(PEM_CERT) ?? []) {
    const der = block.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    if (seen.has(der)) continue;
    seen.add(der);
    out.push(block);
  }
  // Without a repeat the text stays as the files hold it.
  return out.length === (pem.match(PEM_CERT) ?? []).length ? pem : out.join('\n');
}
