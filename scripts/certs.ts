/**
 * `npm run certs [-- DIR]`: a local certificate authority and certificates signed by it, for the
 * TLS examples (`examples/tls/`) and for trying `https://` and `wss://` locally. Written to
 * `certs/` (gitignored) unless a directory is given. Tests call `generateCertificates` into a
 * temporary directory at run time, so nothing depends on checked-in keys that expire.
 *
 * Node's crypto makes the keys and the signatures; the certificates themselves (RFC 5280) are
 * encoded here in DER, so that neither `npm run certs` nor the TLS tests need the `openssl`
 * command line (a machine with only Node and npm runs them). Keys are ECDSA P-256, unencrypted
 * PKCS#8 PEM unless a pass phrase is asked for (then also PKCS#8, AES-256-CBC), certificates are
 * signed with ECDSA-SHA256 and carry what `openssl req/x509` wrote for the same request.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One certificate to issue. */
export interface CertRequest {
  /** File names: NAME.crt and NAME.key. */
  readonly name: string;
  /** Subject common name. @default the first DNS name, else `name` */
  readonly commonName?: string;
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  /** 'server' (serverAuth) or 'client' (clientAuth). @default 'server' */
  readonly usage?: 'server' | 'client';
  /** Name of the CA that signs it (a CA made by `cas`). @default the first CA */
  readonly issuer?: string;
  /** Also write NAME.enc.key encrypted with this pass phrase (AES-256). */
  readonly passphrase?: string;
  /** Validity in days. @default 365 */
  readonly days?: number;
  /** 'ec' (P-256) or 'rsa' (2048 bits, for the DHE and RSA key exchange cipher suites). @default 'ec' */
  readonly keyType?: 'ec' | 'rsa';
  /** An OCSP responder URL for the Authority Information Access extension (RFC 5280 4.2.2.1). */
  readonly ocspUrl?: string;
}

/** What was written: absolute paths by name. */
export interface GeneratedFiles {
  readonly dir: string;
  /** CA name -> { cert, key }. */
  readonly cas: ReadonlyMap<string, { readonly cert: string; readonly key: string }>;
  /** Certificate name -> { cert, key, encryptedKey? }. */
  readonly certs: ReadonlyMap<string, { readonly cert: string; readonly key: string; readonly encryptedKey?: string }>;
}

export interface GenerateOptions {
  /**
   * Certificate authorities to make (NAME.crt / NAME.key), the first is the default issuer; one
   * with an `issuer` (a CA made before it) is an intermediate CA. @default ['ca']
   */
  readonly cas?: readonly { readonly name: string; readonly commonName: string; readonly issuer?: string }[];
  readonly certs: readonly CertRequest[];
}

// DER (X.690): tag, length, contents.
function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
const TRUE = tlv(0x01, Buffer.from([0xff]));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && (b[i + 1]! & 0x80) === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const base128 = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

/** A Name with one CN (UTF8String), as `openssl -subj /CN=...` writes it. */
const nameOf = (cn: string): Buffer => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** The length of a DER element's header at `at` and of its contents. */
function derLength(der: Buffer, at: number): { head: number; length: number } {
  const first = der[at + 1]!;
  if (first < 0x80) return { head: 2, length: first };
  let length = 0;
  for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[at + 2 + i]!;
  return { head: 2 + (first & 0x7f), length };
}

/**
 * subjectKeyIdentifier "hash" (RFC 5280 4.2.1.2, method 1): SHA-1 of the public key's bits, the
 * BIT STRING after the algorithm in SubjectPublicKeyInfo (an EC point, an RSA key).
 */
function keyId(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const outer = derLength(spki, 0);
  const algorithm = derLength(spki, outer.head);
  const bitsAt = outer.head + algorithm.head + algorithm.length;
  const key = derLength(spki, bitsAt);
  // Skip the BIT STRING's unused-bits octet.
  return createHash('sha1').update(spki.subarray(bitsAt + key.head + 1, bitsAt + key.head + key.length)).digest();
}

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

interface Issuer {
  readonly name: Buffer;
  readonly key: KeyObject;
  readonly keyId: Buffer;
}

/** A certificate (RFC 5280 4.1), signed by `issuer` (itself when self-signed), as PEM. */
function certificate(o: { subject: Buffer; publicKey: KeyObject; issuer: Issuer; days: number; extensions: Buffer[] }): string {
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const notAfter = new Date(notBefore.getTime() + o.days * 86_400_000);
  const serial = randomBytes(8);
  serial[0]! &= 0x7f;
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    o.issuer.name,
    seq(time(notBefore), time(notAfter)),
    o.subject,
    o.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...o.extensions)),
  );
  const der = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, o.issuer.key)));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

const p256 = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pkcs8 = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }) as string;

/** Makes the CAs, then each certificate signed by its issuer. Files are written to `dir`. */
export async function generateCertificates(dir: string, options: GenerateOptions): Promise<GeneratedFiles> {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const write = (file: string, text: string): string => {
    writeFileSync(join(out, file), text, { mode: file.endsWith('.key') ? 0o600 : 0o644 });
    return join(out, file);
  };
  const issuers = new Map<string, Issuer>();
  const cas = new Map<string, { cert: string; key: string }>();
  for (const ca of options.cas ?? [{ name: 'ca', commonName: 'Sluice Local CA' }]) {
    const { publicKey, privateKey } = p256();
    const self: Issuer = { name: nameOf(ca.commonName), key: privateKey, keyId: keyId(publicKey) };
    const parent = ca.issuer === undefined ? self : issuers.get(ca.issuer);
    if (parent === undefined) throw new Error(`CA "${ca.name}": no CA named "${ca.issuer ?? ''}" before it`);
    const pem = certificate({
      subject: self.name, publicKey, issuer: parent, days: 3650,
      extensions: [
        extension('2.5.29.19', true, seq(TRUE)), // basicConstraints: CA
        extension('2.5.29.15', true, bits(Buffer.from([0x06]), 1)), // keyUsage: keyCertSign, cRLSign
        extension('2.5.29.14', false, octets(self.keyId)),
        ...(parent === self ? [] : [extension('2.5.29.35', false, seq(tlv(0x80, parent.keyId)))]),
      ],
    });
    issuers.set(ca.name, self);
    cas.set(ca.name, { cert: write(`${ca.name}.crt`, pem), key: write(`${ca.name}.key`, pkcs8(privateKey)) });
  }
  const firstCa = cas.keys().next().value as string;
  const certs = new Map<string, { cert: string; key: string; encryptedKey?: string }>();
  for (const c of options.certs) {
    const issuer = issuers.get(c.issuer ?? firstCa);
    if (issuer === undefined) throw new Error(`certificate "${c.name}": no CA named "${c.issuer ?? ''}"`);
    const { publicKey, privateKey } = c.keyType === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : p256();
    const alt = [
      ...(c.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
      ...(c.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
    ];
    const pem = certificate({
      subject: nameOf(c.commonName ?? c.dnsNames?.[0] ?? c.name), publicKey, issuer, days: c.days ?? 365,
      extensions: [
        extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
        extension('2.5.29.15', true, bits(Buffer.from([0xa0]), 5)), // keyUsage: digitalSignature, keyEncipherment
        extension('2.5.29.37', false, seq(oid(c.usage === 'client' ? '1.3.6.1.5.5.7.3.2' : '1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.14', false, octets(keyId(publicKey))),
        extension('2.5.29.35', false, seq(tlv(0x80, issuer.keyId))),
        ...(alt.length > 0 ? [extension('2.5.29.17', false, seq(...alt))] : []),
        // authorityInfoAccess: id-ad-ocsp, uniformResourceIdentifier
        ...(c.ocspUrl !== undefined ? [extension('1.3.6.1.5.5.7.1.1', false, seq(seq(oid('1.3.6.1.5.5.7.48.1'), tlv(0x86, Buffer.from(c.ocspUrl, 'ascii')))))] : []),
      ],
    });
    const files: { cert: string; key: string; encryptedKey?: string } = { cert: write(`${c.name}.crt`, pem), key: write(`${c.name}.key`, pkcs8(privateKey)) };
    if (c.passphrase !== undefined) {
      files.encryptedKey = write(`${c.name}.enc.key`, privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: c.passphrase }) as string);
    }
    certs.set(c.name, files);
  }
  return { dir: out, cas, certs };
}

/**
 * A certificate revocation list (RFC 5280 5.1, v2) issued by the CA `ca` (its PEM certificate and
 * PKCS#8 key, as generateCertificates writes them) that revokes the certificates with these
 * serial numbers (hex, as X509Certificate.serialNumber gives them). `days` may be negative for a
 * list whose nextUpdate has passed. PEM.
 */
export function certificateRevocationList(ca: { readonly cert: string; readonly key: string }, serials: readonly string[], days = 30): string {
  const caDer = Buffer.from(ca.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const key = createPrivateKey(ca.key);
  // The issuer is the CA's subject, byte for byte: tbsCertificate's sixth element.
  const subject = derChild(derChild(caDer, 0), 5);
  const issuerKeyId = keyId(createPublicKey(key));
  const now = Math.floor(Date.now() / 1000) * 1000;
  const thisUpdate = new Date(Math.min(now, now + days * 86_400_000) - 120_000);
  const nextUpdate = new Date(now + days * 86_400_000);
  const revoked = serials.map((s) => seq(integer(Buffer.from(s.length % 2 === 0 ? s : `0${s}`, 'hex')), time(thisUpdate)));
  const tbs = seq(
    integer(Buffer.from([1])),
    ECDSA_SHA256,
    subject,
    time(thisUpdate),
    time(nextUpdate),
    ...(revoked.length > 0 ? [seq(...revoked)] : []),
    tlv(0xa0, seq(
      extension('2.5.29.35', false, seq(tlv(0x80, issuerKeyId))),
      extension('2.5.29.20', false, integer(Buffer.from([1]))), // cRLNumber
    )),
  );
  const der = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, key)));
  return `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END X509 CRL-----\n`;
}

/** The `index`-th element (header included) inside the DER SEQUENCE `der`. */
function derChild(der: Buffer, index: number): Buffer {
  let p = derLength(der, 0).head;
  for (let i = 0; i < index; i++) {
    const el = derLength(der, p);
    p += el.head + el.length;
  }
  const el = derLength(der, p);
  return der.subarray(p, p + el.head + el.length);
}

/** An iPAddress SAN (RFC 5280 4.2.1.6): 4 or 16 octets. */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6 || ip.includes('.')) throw new Error(`"${ip}" is not an IPv4 or plain IPv6 address`);
  const [head, tail = ''] = ip.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head!);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The set `npm run certs` writes: a CA, a server certificate for localhost and a client certificate. */
export const LOCAL_SET: GenerateOptions = {
  cas: [{ name: 'ca', commonName: 'Sluice Local CA' }],
  certs: [
    { name: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'] },
    { name: 'client', commonName: 'sluice-client', usage: 'client' },
  ],
};

async function main(): Promise<void> {
  const dir = process.argv[2] ?? resolve(fileURLToPath(new URL('../..', import.meta.url)), 'certs');
  const files = await generateCertificates(dir, LOCAL_SET);
  process.stdout.write(`wrote a local CA and certificates to ${files.dir}:\n`);
  for (const [name, f] of files.cas) process.stdout.write(`  CA ${name}: ${f.cert}\n`);
  for (const [name, f] of files.certs) process.stdout.write(`  ${name}: ${f.cert} ${f.key}\n`);
  process.stdout.write('trust the CA in a client with e.g. `curl --cacert certs/ca.crt https://localhost:8443/`\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`certs: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
