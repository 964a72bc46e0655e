/**
 * OCSP (RFC 6960) as nginx's stapling uses it: the request for one certificate (a CertID with
 * SHA-1 hashes, no nonce, as OpenSSL's OCSP_cert_to_id and nginx send), and the checks nginx makes
 * of a responder's answer before stapling it (ngx_ssl_ocsp_verify): a successful basic response,
 * signed by the issuer or by a responder the issuer delegated to (id-kp-OCSPSigning) when
 * `ssl_stapling_verify` is on, a status for this certificate, and a validity window that holds
 * now (5 minutes of clock skew allowed, as OCSP_check_validity is called).
 */
import { X509Certificate, createHash, verify as verifySignature } from 'node:crypto';
import { DerError, TAG, childAt, children, encode, encodeOid, generalizedTime, oidText, readDer } from './der.js';
import type { Der } from './der.js';

const OID_SHA1 = '1.3.14.3.2.26';
const OID_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OID_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

/** Signature algorithms of OCSP responses, by OID: the digest Node.js verifies with (null: the key's own, Ed25519). */
const SIGNATURE_DIGESTS: ReadonlyMap<string, string | null> = new Map([
  ['1.2.840.113549.1.1.5', 'sha1'],
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.1', 'sha1'],
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.3.101.112', null],
]);

const HASHES: ReadonlyMap<string, string> = new Map([
  [OID_SHA1, 'sha1'],
  ['2.16.840.1.101.3.4.2.1', 'sha256'],
  ['2.16.840.1.101.3.4.2.2', 'sha384'],
  ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);

/** OCSPResponseStatus names (OCSP_response_status_str). */
const RESPONSE_STATUS = ['successful', 'malformedrequest', 'internalerror', 'trylater', '(unknown)', 'sigrequired', 'unauthorized'];

/** Clock skew OCSP_check_validity is given by nginx. */
const VALIDITY_LEEWAY_MS = 300_000;

/** The fields of a certificate an OCSP request needs. */
interface CertParts {
  readonly serial: Buffer;
  readonly subject: Buffer;
  readonly publicKeyBits: Buffer;
}

/** tbsCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ... */
function certParts(der: Buffer): CertParts {
  const tbs = childAt(readDer(der), 0, TAG.SEQUENCE);
  const fields = children(tbs);
  const at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const serial = fields[at];
  const subject = fields[at + 4];
  const spki = fields[at + 5];
  if (serial?.tag !== TAG.INTEGER || subject?.tag !== TAG.SEQUENCE || spki?.tag !== TAG.SEQUENCE) throw new DerError('not a certificate');
  const bits = childAt(spki, 1, TAG.BIT_STRING).content;
  return { serial: serial.content, subject: subject.raw, publicKeyBits: bits.subarray(1) };
}

function hash(algorithm: string, data: Buffer): Buffer {
  return createHash(algorithm).update(data).digest();
}

/** The OCSPRequest for a certificate (DER), as nginx sends it: one CertID, SHA-1, no extensions. */
export function ocspRequest(certificate: Buffer, issuer: Buffer): Buffer {
  const cert = certParts(certificate);
  const ca = certParts(issuer);
  const certId = encode(TAG.SEQUENCE, [
    encode(TAG.SEQUENCE, [encodeOid(OID_SHA1), encode(TAG.NULL, Buffer.alloc(0))]),
    encode(TAG.OCTET_STRING, hash('sha1', ca.subject)),
    encode(TAG.OCTET_STRING, hash('sha1', ca.publicKeyBits)),
    encode(TAG.INTEGER, cert.serial),
  ]);
  const request = encode(TAG.SEQUENCE, [certId]);
  const tbs = encode(TAG.SEQUENCE, [encode(TAG.SEQUENCE, [request])]);
  return encode(TAG.SEQUENCE, [tbs]);
}

/** The outcome of checking a responder's answer. */
export type OcspCheck =
  | { readonly ok: true; readonly status: 'good' | 'revoked' | 'unknown'; readonly nextUpdate: number | null }
  | { readonly ok: false; readonly error: string };

export interface OcspCheckOptions {
  readonly certificate: Buffer;
  readonly issuer: Buffer;
  /** `ssl_stapling_verify`: check the signature and who signed. */
  readonly verify: boolean;
  /** Certificates trusted as signers outright (the `ssl_certificate` chain: OCSP_TRUSTOTHER). */
  readonly chain: readonly X509Certificate[];
  /** Where another signer's certificate must chain to (`ssl_trusted_certificate`). */
  readonly trusted: readonly X509Certificate[];
  readonly now: number;
}

/** Whether a DER blob is an OCSPResponse at all (nginx's d2i_OCSP_RESPONSE check of `ssl_stapling_file`). */
export function isOcspResponse(der: Buffer): boolean {
  try {
    const top = readDer(der);
    return top.tag === TAG.SEQUENCE && top.raw.length === der.length && childAt(top, 0, TAG.ENUMERATED).content.length === 1;
  } catch {
    return false;
  }
}

interface Basic {
  readonly tbs: Der;
  readonly digest: string | null;
  readonly signature: Buffer;
  readonly certs: X509Certificate[];
  readonly responderByName: Buffer | null;
  readonly responderByKey: Buffer | null;
  readonly responses: Der[];
}

function parseBasic(der: Buffer): Basic {
  const basic = readDer(der);
  const [tbs, algorithm, signature, certsField] = children(basic);
  if (tbs?.tag !== TAG.SEQUENCE || algorithm?.tag !== TAG.SEQUENCE || signature?.tag !== TAG.BIT_STRING) throw new DerError('bad BasicOCSPResponse');
  const oid = oidText(childAt(algorithm, 0, TAG.OID).content);
  if (!SIGNATURE_DIGESTS.has(oid)) throw new DerError(`unsupported signature algorithm ${oid}`);
  const certs = certsField?.tag === 0xa0 ? children(childAt(certsField, 0, TAG.SEQUENCE)).map((c) => new X509Certificate(c.raw)) : [];
  const fields = children(tbs);
  const at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const responder = fields[at];
  const responses = fields[at + 2];
  if (responder === undefined || responses?.tag !== TAG.SEQUENCE) throw new DerError('bad ResponseData');
  return {
    tbs,
    digest: SIGNATURE_DIGESTS.get(oid) ?? null,
    signature: signature.content.subarray(1),
    certs,
    responderByName: responder.tag === 0xa1 ? childAt(responder, 0).raw : null,
    responderByKey: responder.tag === 0xa2 ? childAt(responder, 0, TAG.OCTET_STRING).content : null,
    responses: children(responses),
  };
}

function publicKeyBits(x: X509Certificate): Buffer {
  return certParts(x.raw).publicKeyBits;
}

function subjectOf(x: X509Certificate): Buffer {
  return certParts(x.raw).subject;
}

/** The certificate named by the responder ID among the candidates. */
function findSigner(b: Basic, candidates: readonly X509Certificate[]): X509Certificate | null {
  for (const c of candidates) {
    if (b.responderByKey !== null && hash('sha1', publicKeyBits(c)).equals(b.responderByKey)) return c;
    if (b.responderByName !== null && subjectOf(c).equals(b.responderByName)) return c;
  }
  return null;
}

function signedBy(x: X509Certificate, by: X509Certificate): boolean {
  return x.checkIssued(by) && x.verify(by.publicKey);
}

/** Whether `x` chains to one of `trusted` through `via` (at most a few links, as real chains go). */
function chainsTo(x: X509Certificate, via: readonly X509Certificate[], trusted: readonly X509Certificate[]): boolean {
  let current = x;
  for (let depth = 0; depth < 8; depth++) {
    if (trusted.some((t) => t.raw.equals(current.raw) || signedBy(current, t))) return true;
    const next = via.find((c) => !c.raw.equals(current.raw) && signedBy(current, c));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}

/** OCSP_basic_verify as nginx calls it (OCSP_TRUSTOTHER with the chain), and OCSP_check_issuer. */
function verifyBasic(b: Basic, o: OcspCheckOptions, issuer: X509Certificate): string | null {
  const signer = findSigner(b, [...b.certs, ...o.chain, issuer]);
  if (signer === null) return 'OCSP_basic_verify() failed (signer certificate not found)';
  if (!verifySignature(b.digest, b.tbs.raw, signer.publicKey, b.signature)) return 'OCSP_basic_verify() failed (signature failure)';
  const trustedOutright = o.chain.some((c) => c.raw.equals(signer.raw));
  if (!trustedOutright && !chainsTo(signer, [...b.certs, ...o.chain], o.trusted)) {
    return 'OCSP_basic_verify() failed (certificate verify error)';
  }
  if (signer.raw.equals(issuer.raw)) return null;
  // A delegated responder: issued by the certificate's issuer for OCSP signing (RFC 6960 4.2.2.2).
  if (!signedBy(signer, issuer) || !(signer.keyUsage ?? []).includes(OID_OCSP_SIGNING)) {
    return 'OCSP_basic_verify() failed (missing ocspsigning usage)';
  }
  return null;
}

/** Checks a responder's answer for `certificate` as nginx does before stapling it. */
export function checkOcspResponse(der: Buffer, o: OcspCheckOptions): OcspCheck {
  try {
    const top = readDer(der);
    const status = childAt(top, 0, TAG.ENUMERATED).content[0] ?? 0;
    if (status !== 0) return { ok: false, error: `OCSP response not successful (${status}: ${RESPONSE_STATUS[status] ?? '(unknown)'})` };
    const bytes = childAt(childAt(top, 1), 0, TAG.SEQUENCE);
    if (oidText(childAt(bytes, 0, TAG.OID).content) !== OID_BASIC) return { ok: false, error: 'OCSP_response_get1_basic() failed' };
    const basic = parseBasic(childAt(bytes, 1, TAG.OCTET_STRING).content);
    const issuer = new X509Certificate(o.issuer);
    if (o.verify) {
      const error = verifyBasic(basic, o, issuer);
      if (error !== null) return { ok: false, error };
    }
    const cert = certParts(o.certificate);
    const ca = certParts(o.issuer);
    for (const single of basic.responses) {
      const [id, certStatus, thisUpdate, ...rest] = children(single);
      if (id === undefined || certStatus === undefined || thisUpdate?.tag !== TAG.GENERALIZED_TIME) continue;
      const [alg, nameHash, keyHash, serial] = children(id);
      const algorithm = HASHES.get(oidText(childAt(alg!, 0, TAG.OID).content));
      if (algorithm === undefined || serial === undefined) continue;
      if (!serial.content.equals(cert.serial) || !nameHash!.content.equals(hash(algorithm, ca.subject))
        || !keyHash!.content.equals(hash(algorithm, ca.publicKeyBits))) continue;
      const next = rest.find((r) => r.tag === 0xa0);
      const nextUpdate = next === undefined ? null : generalizedTime(childAt(next, 0, TAG.GENERALIZED_TIME).content);
      const start = generalizedTime(thisUpdate.content);
      if (start > o.now + VALIDITY_LEEWAY_MS || (nextUpdate !== null && (nextUpdate < o.now - VALIDITY_LEEWAY_MS || nextUpdate < start))) {
        return { ok: false, error: 'OCSP_check_validity() failed' };
      }
      const tag = certStatus.tag & 0x1f;
      return { ok: true, status: tag === 0 ? 'good' : tag === 1 ? 'revoked' : 'unknown', nextUpdate };
    }
    return { ok: false, error: 'certificate status not found in the OCSP response' };
  } catch (error) {
    return { ok: false, error: `d2i_OCSP_RESPONSE() failed (${(error as Error).message})` };
  }
}
