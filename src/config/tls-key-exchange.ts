/**
 * `ssl_dhparam` and `ssl_ecdh_curve`, checked when the configuration is loaded: Node.js drops DH
 * parameters it cannot read without a word (the DHE ciphers then silently vanish), so Sluice reads
 * them itself and reports what nginx would.
 */
import { createSecureContext } from 'node:tls';
import { DerError, TAG, childAt, integerBits, pemBlocks, readDer } from '../core/der.js';
import type { BuildContext } from './build-context.js';
import type { ConfigFileRef, SourceLoc } from './types.js';
import { PATH_HINT, bioNewFileFailed, problemOnce, readText } from './tls-files.js';

/** Node.js refuses smaller DH groups (and warns below 2048 bits). */
const MIN_DH_BITS = 1024;
const RECOMMENDED_DH_BITS = 2048;

/** The PEM of `ssl_dhparam`, or null (reported) when it is missing or not DH parameters. */
export function loadDhparam(cx: BuildContext, ref: ConfigFileRef): string | null {
  const r = readText(cx, ref.path);
  if ('error' in r) {
    problemOnce(cx, bioNewFileFailed(ref.path, r.error), ref.loc, PATH_HINT);
    return null;
  }
  const block = pemBlocks(r.text, /^(X9\.42 )?DH PARAMETERS$/)[0];
  let bits = 0;
  try {
    if (block === undefined) throw new DerError('no PEM block');
    // DHParameter (PKCS #3) and DomainParameters (X9.42) both start with the prime.
    bits = integerBits(childAt(readDer(block), 0, TAG.INTEGER).content);
  } catch {
    problemOnce(cx, `PEM_read_bio_DHparams("${ref.path}") failed`, ref.loc,
      `"${ref.path}" must hold "-----BEGIN DH PARAMETERS-----" (make one with "openssl dhparam -out FILE 2048", or use RFC 7919's ffdhe2048)`);
    return null;
  }
  if (bits < MIN_DH_BITS) {
    problemOnce(cx, `DH parameters of ${bits} bits in "${ref.path}" are too small`, ref.loc,
      `Node.js refuses DH groups under ${MIN_DH_BITS} bits; use ${RECOMMENDED_DH_BITS} or more`);
    return null;
  }
  return r.text;
}

const curveChecks = new WeakMap<BuildContext, Set<string>>();

/** Checks an `ssl_ecdh_curve` list with OpenSSL (nginx's SSL_CTX_set1_curves_list), once per value. */
export function checkEcdhCurve(cx: BuildContext, curves: string, at: SourceLoc): boolean {
  if (curves === 'auto') return true;
  let checked = curveChecks.get(cx);
  if (checked === undefined) curveChecks.set(cx, checked = new Set());
  if (checked.has(curves)) return true;
  try {
    createSecureContext({ ecdhCurve: curves });
  } catch {
    problemOnce(cx, `SSL_CTX_set1_curves_list("${curves}") failed`, at,
      'list curves OpenSSL knows, separated by ":" (e.g. "X25519:prime256v1:secp384r1"), or write "auto"');
    return false;
  }
  checked.add(curves);
  return true;
}
