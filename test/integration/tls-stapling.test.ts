// OCSP stapling as nginx does it (ssl_stapling, ssl_stapling_verify, ssl_stapling_file,
// ssl_stapling_responder, ssl_trusted_certificate): against a local OCSP responder (Node's crypto;
// the e2e suite checks that nginx takes what it makes), with real TLS clients that ask for the
// certificate status; and the warnings and errors of `-t`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generateCertificates } from '../../scripts/certs.js';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { conf } from '../helpers/config-text.js';
import { startOcspResponder } from '../helpers/ocsp-responder.js';
import type { OcspResponder } from '../helpers/ocsp-responder.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import type { AfterHook, TempDir } from '../helpers/temp.js';
import { tempDir } from '../helpers/temp.js';
import { tlsStaple } from '../helpers/tls-client.js';
import { delay, waitFor } from '../helpers/wait.js';

const staple = (port: number): Promise<Buffer | null> => tlsStaple(port, { servername: 'localhost' });

/** Waits until a client gets a staple (the proxy asks the responder as it starts). */
function firstStaple(proxy: TestProxy): Promise<Buffer> {
  return waitFor(() => staple(proxy.port), { what: 'a stapled OCSP response' });
}

interface Pki {
  readonly dir: TempDir;
  readonly ca: { cert: string; key: string };
  readonly rogue: { cert: string; key: string };
  /** localhost, with `url` as its OCSP responder (Authority Information Access). */
  readonly leaf: { cert: string; key: string };
  /** localhost, without any OCSP URL. */
  readonly bare: { cert: string; key: string };
}

/** A CA, an unrelated CA and two certificates made for one test. */
async function pki(t: AfterHook, url: string): Promise<Pki> {
  const dir = tempDir(t);
  const g = await generateCertificates(dir.path, {
    cas: [{ name: 'ca', commonName: 'Stapling CA' }, { name: 'rogue', commonName: 'Rogue CA' }],
    certs: [{ name: 'leaf', dnsNames: ['localhost'], ocspUrl: url }, { name: 'bare', dnsNames: ['localhost'] }],
  });
  return { dir, ca: g.cas.get('ca')!, rogue: g.cas.get('rogue')!, leaf: g.certs.get('leaf')!, bare: g.certs.get('bare')! };
}

/** A responder answering `status` for both certificates, signed by the CA (or by the rogue CA). */
async function responder(t: AfterHook, p: Pki, status: 'good' | 'revoked', rogue = false): Promise<OcspResponder> {
  const r = await startOcspResponder({
    caCert: p.ca.cert,
    ...(rogue ? { signerCert: p.rogue.cert, signerKey: p.rogue.key } : { signerKey: p.ca.key }),
    entries: [{ certFile: p.leaf.cert, status }, { certFile: p.bare.cert, status }],
  });
  t.after(() => r.close());
  return r;
}

function server(lines: string, cert: { cert: string; key: string }, listen = '127.0.0.1:0'): string {
  return `server { listen ${listen} ssl; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key};
    ${lines}
    location / { return 200 "ok"; } }`;
}

test('ssl_stapling: the responder named in the certificate is asked once; clients get its answer as it was sent', async (t) => {
  // The responder listens first: the certificate then names its URL.
  const r = await startOcspResponder();
  t.after(() => r.close());
  const p = await pki(t, r.url);
  r.configure({ caCert: p.ca.cert, signerKey: p.ca.key, entries: [{ certFile: p.leaf.cert, status: 'good' }] });
  const proxy = await startTestProxy(conf(server(`ssl_stapling on; ssl_stapling_verify on; ssl_trusted_certificate ${p.ca.cert};`, p.leaf)), { t });
  const got = await firstStaple(proxy);
  assert.deepEqual(got, r.responses.at(-1));
  // The request names the certificate: its serial is in the CertID the responder answered.
  const serial = Buffer.from(new X509Certificate(readFileSync(p.leaf.cert)).serialNumber, 'hex');
  assert.ok(r.requests.at(-1)!.includes(serial));
  const asked = r.requests.length;
  assert.deepEqual(await staple(proxy.port), got);
  assert.equal(r.requests.length, asked, 'the answer is kept until it is due for a refresh');
});

test('ssl_stapling_responder overrides the certificate\'s URL', async (t) => {
  const p = await pki(t, 'http://127.0.0.1:9/nobody-listens');
  const r = await responder(t, p, 'good');
  const proxy = await startTestProxy(conf(server(`ssl_stapling on; ssl_trusted_certificate ${p.ca.cert}; ssl_stapling_responder ${r.url};`, p.bare)), { t });
  assert.deepEqual(await firstStaple(proxy), r.responses.at(-1));
});

test('nothing is stapled for a revoked certificate, a rogue signer with ssl_stapling_verify, or a failing responder', async (t) => {
  const p = await pki(t, 'http://127.0.0.1:9/unused');
  const revoked = await responder(t, p, 'revoked');
  const rogue = await responder(t, p, 'good', true);
  const broken = await startOcspResponder();
  t.after(() => broken.close());
  const cases = [
    [revoked, 'ssl_stapling_verify on;', /\[error\] .*certificate status "revoked" in the OCSP response while requesting certificate status, responder: 127\.0\.0\.1, certificate: "/],
    [rogue, 'ssl_stapling_verify on;', /\[error\] .*OCSP_basic_verify\(\) failed/],
    [broken, '', /\[error\] .*OCSP responder sent invalid status "503 Service Unavailable"/],
  ] as const;
  for (const [r, verify, logged] of cases) {
    const proxy = await startTestProxy(conf(server(`ssl_stapling on; ${verify} ssl_trusted_certificate ${p.ca.cert}; ssl_stapling_responder ${r.url};`, p.leaf)), { t });
    await proxy.waitForErrorLine(logged);
    assert.equal(await staple(proxy.port), null);
  }
  // Without ssl_stapling_verify nginx does not check who signed (OCSP_NOVERIFY): the rogue answer is stapled.
  const lax = await startTestProxy(conf(server(`ssl_stapling on; ssl_trusted_certificate ${p.ca.cert}; ssl_stapling_responder ${rogue.url};`, p.leaf)), { t });
  assert.deepEqual(await firstStaple(lax), rogue.responses.at(-1));
});

test('ssl_stapling_file is stapled as it is; no responder is asked', async (t) => {
  const p = await pki(t, 'http://127.0.0.1:9/unused');
  const r = await responder(t, p, 'good');
  // A response saved once, as `openssl ocsp -respout` would keep it.
  const saver = await startTestProxy(conf(server(`ssl_stapling on; ssl_trusted_certificate ${p.ca.cert}; ssl_stapling_responder ${r.url};`, p.bare)), { t });
  const saved = await firstStaple(saver);
  const file = p.dir.write('staple.der', saved);
  const asked = r.requests.length;
  const proxy = await startTestProxy(conf(server(`ssl_stapling on; ssl_stapling_file ${file};`, p.bare)), { t });
  assert.deepEqual(await staple(proxy.port), saved);
  await delay(100);
  assert.equal(r.requests.length, asked, 'the responder was not asked');
  // Stapling off: nothing, even with a file.
  const off = await startTestProxy(conf(server(`ssl_stapling_file ${file};`, p.bare)), { t });
  assert.equal(await staple(off.port), null);
});

test('-t: where nginx ignores ssl_stapling it warns in the same words; a stapling file must be an OCSP response', async (t) => {
  const p = await pki(t, 'ldap://example.test/ocsp');
  const notOcsp = p.dir.write('not-ocsp.der', 'hello');
  const ok = await loadConfig({
    prefix: p.dir.path,
    text: conf([
      server('ssl_stapling on;', p.leaf, '127.0.0.1:0'),
      server(`ssl_stapling on; ssl_trusted_certificate ${p.ca.cert};`, p.bare, '127.0.0.2:0'),
      server(`ssl_stapling on; ssl_trusted_certificate ${p.ca.cert};`, p.leaf, '127.0.0.3:0'),
    ].join('\n')),
  });
  assert.equal(ok.ok, true, ok.ok ? '' : ok.problems.map((x) => formatProblem(x)).join('\n'));
  assert.deepEqual(ok.ok ? ok.config.warnings.map((w) => formatProblem(w)) : [], [
    `[warn] "ssl_stapling" ignored, issuer certificate not found for certificate "${p.leaf.cert}" in <inline>:3`,
    `[warn] "ssl_stapling" ignored, no OCSP responder URL in the certificate "${p.bare.cert}" in <inline>:6`,
    `[warn] "ssl_stapling" ignored, invalid URL prefix in OCSP responder "ldap://example.test/ocsp" in the certificate "${p.leaf.cert}" in <inline>:9`,
  ]);
  const bad = await loadConfig({ prefix: p.dir.path, text: conf(server(`ssl_stapling on; ssl_stapling_file ${notOcsp};`, p.leaf)) });
  assert.deepEqual(bad.ok ? [] : bad.problems.map((x) => formatProblem(x)), [`[emerg] d2i_OCSP_RESPONSE_bio("${notOcsp}") failed in <inline>:4`]);
});
