import { X509Certificate, createHash, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TAG, childAt, children, encode, encodeOid, readDer } from '../../src/core/der.js';

/** A certificate the responder knows, and what it answers about it. */
export interface OcspEntry {
  readonly certFile: string;
  readonly status: 'good' | 'revoked';
}

/** What a responder answers, see {@link OcspResponder.configure}. */
export interface OcspResponderOptions {
  /** The issuer of the certificates asked about (PEM file). */
  readonly caCert: string;
  /** Who signs the answers: the issuer by default; another key makes answers that do not verify. */
  readonly signerCert?: string;
  readonly signerKey: string;
  readonly entries: readonly OcspEntry[];
  /** Answer every request with this HTTP status instead (a failing responder). */
  readonly httpStatus?: number;
}

/** A running responder. */
export interface OcspResponder {
  /** `http://127.0.0.1:PORT/ocsp` */
  readonly url: string;
  /** Every request (DER), in order. */
  readonly requests: Buffer[];
  /** Every response sent (DER), in order. */
  readonly responses: Buffer[];
  /** Sets what it answers (until then, 503): it may be started before the certificates that name its URL exist. */
  configure(o: OcspResponderOptions): void;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;

/** GeneralizedTime, whole seconds (RFC 5280 4.1.2.5.2). */
function time(ms: number): Buffer {
  return encode(TAG.GENERALIZED_TIME, Buffer.from(`${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`));
}

/** The subjectPublicKey bits of a certificate (what a KeyHash responder ID hashes). */
function keyBits(x: X509Certificate): Buffer {
  const spki = x.publicKey.export({ type: 'spki', format: 'der' });
  return childAt(readDer(spki), 1, TAG.BIT_STRING).content.subarray(1);
}

/**
 * The OCSPResponse (RFC 6960 4.2.1) for one request: the request's CertID echoed with the entry's
 * status (unknown when no entry has that serial), valid for a day, signed with ECDSA-SHA256 by the
 * signer, whose certificate is included as OpenSSL's responder includes it.
 */
function answer(request: Buffer, o: OcspResponderOptions): Buffer {
  const tbsRequest = childAt(readDer(request), 0, TAG.SEQUENCE);
  const fields = children(tbsRequest);
  const requestList = fields.find((f) => f.tag === TAG.SEQUENCE)!;
  const certId = childAt(childAt(requestList, 0, TAG.SEQUENCE), 0, TAG.SEQUENCE);
  const serial = childAt(certId, 3, TAG.INTEGER).content;
  const asked = BigInt(`0x${serial.toString('hex')}`);
  const entry = o.entries.find((e) => BigInt(`0x${new X509Certificate(readFileSync(e.certFile)).serialNumber}`) === asked);
  const now = Date.now();
  const status = entry === undefined
    ? encode(0x82, Buffer.alloc(0))
    : entry.status === 'good' ? encode(0x80, Buffer.alloc(0)) : encode(0xa1, [time(now - DAY_MS)]);
  const signerCert = new X509Certificate(readFileSync(o.signerCert ?? o.caCert));
  const single = encode(TAG.SEQUENCE, [certId.raw, status, time(now - 60_000), encode(0xa0, [time(now + DAY_MS)])]);
  const responderId = encode(0xa2, [encode(TAG.OCTET_STRING, createHash('sha1').update(keyBits(signerCert)).digest())]);
  const tbs = encode(TAG.SEQUENCE, [responderId, time(now), encode(TAG.SEQUENCE, [single])]);
  const signature = sign('sha256', tbs, createPrivateKey(readFileSync(o.signerKey)));
  const basic = encode(TAG.SEQUENCE, [
    tbs,
    encode(TAG.SEQUENCE, [encodeOid('1.2.840.10045.4.3.2')]),
    encode(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])),
    encode(0xa0, [encode(TAG.SEQUENCE, [signerCert.raw])]),
  ]);
  const bytes = encode(TAG.SEQUENCE, [encodeOid('1.3.6.1.5.5.7.48.1.1'), encode(TAG.OCTET_STRING, basic)]);
  return encode(TAG.SEQUENCE, [encode(TAG.ENUMERATED, Buffer.from([0])), encode(0xa0, [bytes])]);
}

/**
 * An OCSP responder (RFC 6960 over HTTP GET and POST) on 127.0.0.1 port 0, written with Node's
 * crypto (no `openssl`): answers about the configured certificates, signed by the signer (the CA
 * unless told otherwise), valid for a day.
 */
export async function startOcspResponder(options?: OcspResponderOptions): Promise<OcspResponder> {
  let o: OcspResponderOptions | null = options ?? null;
  const requests: Buffer[] = [];
  const responses: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const der = req.method === 'POST'
        ? Buffer.concat(chunks)
        : Buffer.from(decodeURIComponent((req.url ?? '').replace(/^\/ocsp\/?/, '')), 'base64');
      requests.push(der);
      const now: OcspResponderOptions | null = o;
      if (now === null || now.httpStatus !== undefined) {
        res.writeHead(now?.httpStatus ?? 503).end();
        return;
      }
      const body = answer(der, now);
      responses.push(body);
      res.writeHead(200, { 'Content-Type': 'application/ocsp-response' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/ocsp`,
    requests,
    responses,
    configure: (next) => void (o = next),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
