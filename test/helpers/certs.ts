import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../scripts/certs.js';

/** PEM text and path of one generated certificate and its key. */
export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** The key encrypted with {@link TEST_PASSPHRASE}, when the certificate has one. */
  readonly encryptedKeyFile?: string;
}

/** The pass phrase of `localhost`'s encrypted key. */
export const TEST_PASSPHRASE = 'sluice-test-passphrase';

/** Everything the TLS tests use, generated once per test process into a temporary directory. */
export interface TestCerts {
  readonly dir: string;
  /** The trusted test CA, and a second CA nobody trusts. */
  readonly ca: TestCert;
  readonly otherCa: TestCert;
  /** localhost, 127.0.0.1, ::1 (with an encrypted copy of the key). */
  readonly localhost: TestCert;
  /** SNI tests: `a.test` and `*.b.test` (plus b.test). */
  readonly a: TestCert;
  readonly b: TestCert;
  /** localhost, but signed by the untrusted CA. */
  readonly untrustedLocalhost: TestCert;
  /** Client certificates: signed by the trusted CA, and by the other one. */
  readonly client: TestCert;
  readonly otherClient: TestCert;
}

let pending: Promise<TestCerts> | null = null;

function load(certFile: string, keyFile: string, encryptedKeyFile?: string): TestCert {
  const base = { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  return encryptedKeyFile === undefined ? base : { ...base, encryptedKeyFile };
}

/**
 * A CA and certificates made at run time by scripts/certs.ts (no openssl needed), shared by the
 * tests of one process and removed when it exits. Never checked in, so nothing expires.
 */
export function testCerts(): Promise<TestCerts> {
  pending ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const g = await generateCertificates(dir, {
      cas: [{ name: 'ca', commonName: 'Sluice Test CA' }, { name: 'other-ca', commonName: 'Untrusted Test CA' }],
      certs: [
        { name: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'], passphrase: TEST_PASSPHRASE },
        { name: 'a', dnsNames: ['a.test'] },
        { name: 'b', dnsNames: ['b.test', '*.b.test'] },
        { name: 'untrusted-localhost', dnsNames: ['localhost'], ips: ['127.0.0.1'], issuer: 'other-ca' },
        { name: 'client', commonName: 'test-client', usage: 'client' },
        { name: 'other-client', commonName: 'other-client', usage: 'client', issuer: 'other-ca' },
      ],
    });
    const ca = g.cas.get('ca')!;
    const other = g.cas.get('other-ca')!;
    const c = (name: string): TestCert => {
      const f = g.certs.get(name)!;
      return load(f.cert, f.key, f.encryptedKey);
    };
    return {
      dir,
      ca: load(ca.cert, ca.key),
      otherCa: load(other.cert, other.key),
      localhost: c('localhost'),
      a: c('a'),
      b: c('b'),
      untrustedLocalhost: c('untrusted-localhost'),
      client: c('client'),
      otherClient: c('other-client'),
    };
  })();
  return pending;
}

/** base64(SHA-256(SubjectPublicKeyInfo)): what Chromium's --ignore-certificate-errors-spki-list takes. */
export function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}
