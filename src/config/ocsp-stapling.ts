/**
 * `ssl_stapling` at load, as nginx's ngx_ssl_stapling does it per certificate: a stapling file is
 * read and must be an OCSP response; otherwise the issuer is looked for in the certificate's own
 * chain, then among the trusted certificates, and the responder URL is `ssl_stapling_responder`
 * or the certificate's Authority Information Access. Where nginx ignores stapling with a warning
 * (no issuer, no URL, not http://), Sluice warns in the same words and staples nothing.
 */
import { X509Certificate } from 'node:crypto';
import { isOcspResponse } from '../core/ocsp.js';
import type { BuildContext } from './build-context.js';
import type { ConfigFileRef, LoadedCertificate, SourceLoc, SslSettings, StaplingConfig } from './types.js';
import { PATH_HINT, bioNewFileFailed, PEM_CERT, cacheOf, problemOnce, readText } from './tls-files.js';

/** Once per message: servers inheriting one `ssl_stapling on` share its certificate. */
function warnOnce(cx: BuildContext, message: string, at: SourceLoc, hint: string): void {
  const seen = cacheOf(cx).reported;
  if (seen.has(`stapling\0${message}`)) return;
  seen.add(`stapling\0${message}`);
  cx.warn(message, at, hint);
}

/** The staple file's content (base64), or null (reported) when it cannot be read or is not an OCSP response. */
function readStapleFile(cx: BuildContext, ref: ConfigFileRef): string | null {
  const r = readText(cx, ref.path);
  if ('error' in r) {
    problemOnce(cx, bioNewFileFailed(ref.path, r.error), ref.loc, PATH_HINT);
    return null;
  }
  if (!isOcspResponse(r.bytes)) {
    problemOnce(cx, `d2i_OCSP_RESPONSE_bio("${ref.path}") failed`, ref.loc,
      `"${ref.path}" must hold one DER-encoded OCSP response (e.g. from "openssl ocsp ... -respout FILE")`);
    return null;
  }
  return r.bytes.toString('base64');
}

/** The responder URL of a certificate's Authority Information Access, as X509_get1_ocsp finds it. */
function aiaResponder(x: X509Certificate): string | null {
  const m = /^OCSP - URI:(.+)$/m.exec(x.infoAccess ?? '');
  return m === null ? null : m[1]!.trim();
}

/**
 * One StaplingConfig per certificate of a server with `ssl_stapling on`; `false` when a file
 * failed (reported). `trusted` is the PEM of ssl_trusted_certificate and ssl_client_certificate.
 */
export function loadStapling(
  cx: BuildContext, ssl: SslSettings, certificates: readonly LoadedCertificate[], trusted: string, at: SourceLoc,
): StaplingConfig[] | false {
  if (!ssl.stapling) return [];
  const file = ssl.staplingFile === null ? null : readStapleFile(cx, ssl.staplingFile);
  if (ssl.staplingFile !== null && file === null) return false;
  const out: StaplingConfig[] = [];
  const trustedCerts = (trusted.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p));
  for (const c of certificates) {
    const blocks = c.cert.match(PEM_CERT) ?? [];
    const leaf = new X509Certificate(blocks[0]!);
    const chain = blocks.slice(1).join('\n');
    const base = { certificate: leaf.raw.toString('base64'), chain, verify: ssl.staplingVerify, trusted, name: c.certFile };
    if (file !== null) {
      out.push({ ...base, file, issuer: null, responder: null });
      continue;
    }
    const issuer = blocks.slice(1).map((p) => new X509Certificate(p)).find((x) => leaf.checkIssued(x))
      ?? trustedCerts.find((x) => leaf.checkIssued(x));
    if (issuer === undefined) {
      warnOnce(cx, `"ssl_stapling" ignored, issuer certificate not found for certificate "${c.certFile}"`, at,
        'put the issuer after the certificate in the ssl_certificate file (the full chain), or name it with "ssl_trusted_certificate"');
      continue;
    }
    const url = ssl.staplingResponder ?? aiaResponder(leaf);
    if (url === null) {
      warnOnce(cx, `"ssl_stapling" ignored, no OCSP responder URL in the certificate "${c.certFile}"`, at,
        'name the responder with "ssl_stapling_responder http://...", or staple a saved response with "ssl_stapling_file"');
      continue;
    }
    if (!/^http:\/\/./i.test(url)) {
      warnOnce(cx, `"ssl_stapling" ignored, invalid URL prefix in OCSP responder "${url}" in the certificate "${c.certFile}"`, at,
        'OCSP responders are asked over plain http://, as in nginx');
      continue;
    }
    out.push({ ...base, file: null, issuer: issuer.raw.toString('base64'), responder: url });
  }
  return out;
}
