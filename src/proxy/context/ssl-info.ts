import type { Socket } from 'node:net';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';

/** What a TLS client connection contributes to `$ssl_*` (read once, after the handshake). */
export interface SslInfo {
  /** `$ssl_protocol`: "TLSv1.3". */
  readonly protocol: string;
  /** `$ssl_cipher`: the OpenSSL name, "TLS_AES_256_GCM_SHA384". */
  readonly cipher: string;
  /** `$ssl_server_name`: the SNI name, "" when the client sent none. */
  readonly serverName: string;
  /** `$ssl_alpn_protocol`: "h2", "http/1.1" or "". */
  readonly alpn: string;
  /** `$ssl_session_reused`: "r" when the session was resumed, else ".". */
  readonly sessionReused: string;
  /** `$ssl_client_verify`: "SUCCESS", "FAILED:reason" or "NONE". */
  readonly clientVerify: string;
  /** Whether the client sent a certificate at all. */
  readonly clientCert: boolean;
  /** The verification error of the client certificate (OpenSSL's text), or null when it verified or none was sent. */
  readonly clientVerifyError: string | null;
  /** The intermediate CA certificates of a client chain that verified (checked against the server's ssl_verify_depth), else 0. */
  readonly clientIntermediates: number;
  /** `$ssl_client_s_dn` / `$ssl_client_i_dn` (RFC 2253), "" without a client certificate. */
  readonly clientSubject: string;
  readonly clientIssuer: string;
}

/** OpenSSL's X509_verify_cert_error_string() texts for the codes Node reports, as nginx logs them. */
export const VERIFY_ERROR_TEXT: Readonly<Record<string, readonly [number, string]>> = {
  UNABLE_TO_GET_ISSUER_CERT: [2, 'unable to get issuer certificate'],
  UNABLE_TO_GET_CRL: [3, 'unable to get certificate CRL'],
  CERT_SIGNATURE_FAILURE: [7, 'certificate signature failure'],
  CRL_SIGNATURE_FAILURE: [8, 'CRL signature failure'],
  CERT_NOT_YET_VALID: [9, 'certificate is not yet valid'],
  CERT_HAS_EXPIRED: [10, 'certificate has expired'],
  CRL_NOT_YET_VALID: [11, 'CRL is not yet valid'],
  CRL_HAS_EXPIRED: [12, 'CRL has expired'],
  DEPTH_ZERO_SELF_SIGNED_CERT: [18, 'self-signed certificate'],
  SELF_SIGNED_CERT_IN_CHAIN: [19, 'self-signed certificate in certificate chain'],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [20, 'unable to get local issuer certificate'],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [21, 'unable to verify the first certificate'],
  CERT_CHAIN_TOO_LONG: [22, 'certificate chain too long'],
  CERT_REVOKED: [23, 'certificate revoked'],
  INVALID_CA: [24, 'invalid CA certificate'],
  INVALID_PURPOSE: [26, 'unsupported certificate purpose'],
  CERT_UNTRUSTED: [27, 'certificate not trusted'],
  CERT_REJECTED: [28, 'certificate rejected'],
  HOSTNAME_MISMATCH: [62, 'hostname mismatch'],
};

/**
 * The number of intermediate CA certificates in a verified chain (getPeerCertificate(true): the
 * peer's chain completed from the trust store, the root pointing at itself).
 */
export function intermediates(cert: PeerCertificate | DetailedPeerCertificate): number {
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = cert as DetailedPeerCertificate;
  while (c !== undefined && Object.keys(c).length > 0 && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    c = c.issuerCertificate;
  }
  return Math.max(0, seen.size - 2);
}

/**
 * OpenSSL's verify depth (ssl_verify_depth, proxy_ssl_verify_depth; since OpenSSL 1.1.0 the most
 * intermediate certificates between the peer's and the trust anchor): Node.js has no setting for
 * it, so the verified chain is counted. The error Node reports for a failed check, or undefined.
 */
export function chainTooLong(cert: PeerCertificate, depth: number): Error | undefined {
  if (intermediates(cert) <= depth) return undefined;
  return Object.assign(new Error('certificate chain too long'), { code: 'CERT_CHAIN_TOO_LONG' });
}

/** "21:unable to verify the first certificate" for a Node verification error code. */
export function verifyErrorText(code: string): string {
  const known = VERIFY_ERROR_TEXT[code];
  return known === undefined ? code : `${known[0]}:${known[1]}`;
}

/** OpenSSL's number for a verification error text (nginx logs "(20:unable to get local issuer certificate)"). */
export function verifyErrorCode(text: string): number {
  for (const [n, t] of Object.values(VERIFY_ERROR_TEXT)) if (t === text) return n;
  return 0;
}

type Dn = Record<string, string | string[]> | undefined;

/** nginx prints DNs as RFC 2253: the last RDN first, comma separated. */
function rfc2253(dn: Dn): string {
  if (dn === undefined) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(dn)) for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${one.replace(/([,+"\\<>;])/g, '\\$1')}`);
  return parts.reverse().join(',');
}

/** The `$ssl_*` facts of a client connection, or null for a plain one. */
export function sslInfoOf(socket: Socket): SslInfo | null {
  if (!('encrypted' in socket)) return null;
  const tls = socket as TLSSocket;
  const peer = tls.getPeerCertificate();
  const clientCert = peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
  const err = tls.authorizationError as unknown as string | null | undefined;
  const clientVerifyError = clientCert && !tls.authorized ? (VERIFY_ERROR_TEXT[err ?? '']?.[1] ?? String(err ?? 'verify failed')) : null;
  return {
    protocol: tls.getProtocol() ?? '',
    cipher: tls.getCipher()?.name ?? '',
    serverName: typeof (tls as { servername?: unknown }).servername === 'string' ? (tls as { servername: string }).servername : '',
    alpn: typeof tls.alpnProtocol === 'string' ? tls.alpnProtocol : '',
    sessionReused: tls.isSessionReused() ? 'r' : '.',
    clientVerify: !clientCert ? 'NONE' : clientVerifyError === null ? 'SUCCESS' : `FAILED:${clientVerifyError}`,
    clientCert,
    clientVerifyError,
    clientIntermediates: clientCert && clientVerifyError === null ? intermediates(tls.getPeerCertificate(true)) : 0,
    clientSubject: clientCert ? rfc2253(peer.subject as Dn) : '',
    clientIssuer: clientCert ? rfc2253(peer.issuer as Dn) : '',
  };
}
