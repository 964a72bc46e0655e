// The handshake settings of Mozilla's generator, as nginx applies them: ssl_dhparam (DHE cipher
// suites exist only with it), ssl_ecdh_curve, ssl_prefer_server_ciphers, ssl_trusted_certificate
// (verifies clients next to ssl_client_certificate), ssl_buffer_size and ssl_early_data; on real
// TLS connections, and the `-t` messages for bad values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateCertificates } from '../../scripts/certs.js';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { tlsConnect, tlsGet } from '../helpers/tls-client.js';

/** RFC 7919's ffdhe2048 group (Appendix A.1), as `openssl genpkey -genparam ... dh_param:ffdhe2048` writes it. */
const FFDHE2048 = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`;

/** Whether a TLS 1.2 handshake with exactly these client options completes; the cipher and key exchange when it does. */
async function handshake(port: number, options: Parameters<typeof tlsConnect>[1]): Promise<{ cipher: string; kx: string } | null> {
  try {
    const s = await tlsConnect(port, { servername: 'localhost', ...options });
    const info = s.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number };
    const cipher = s.getCipher().name;
    s.destroy();
    return { cipher, kx: `${info.type ?? ''} ${info.name ?? info.size ?? ''}` };
  } catch {
    return null;
  }
}

test('ssl_dhparam: DHE cipher suites are offered with the parameters, and not without them (as in nginx)', async (t) => {
  const dir = tempDir(t);
  const g = await generateCertificates(dir.path, { certs: [{ name: 'rsa', dnsNames: ['localhost'], keyType: 'rsa' }] });
  const rsa = g.certs.get('rsa')!;
  const dh = dir.write('ffdhe2048.pem', FFDHE2048);
  const dhe = { maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES128-GCM-SHA256' } as const;
  const lines = `ssl_certificate ${rsa.cert}; ssl_certificate_key ${rsa.key}; ssl_ciphers DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;`;
  const withDh = await startTestProxy(conf(`server { listen 127.0.0.1:0 ssl; ${lines} ssl_dhparam ${dh}; return 200 "$ssl_cipher"; }`), { t });
  assert.deepEqual(await handshake(withDh.port, dhe), { cipher: 'DHE-RSA-AES128-GCM-SHA256', kx: 'DH 2048' });
  const r = await tlsGet(withDh.port, '/', { servername: 'localhost', ...dhe });
  assert.equal(r.text, 'DHE-RSA-AES128-GCM-SHA256');
  const without = await startTestProxy(conf(`server { listen 127.0.0.1:0 ssl; ${lines} return 200 "ok"; }`), { t });
  assert.equal(await handshake(without.port, dhe), null);
  // ECDHE is there either way.
  assert.equal((await handshake(without.port, { maxVersion: 'TLSv1.2' }))?.cipher, 'ECDHE-RSA-AES128-GCM-SHA256');
});

test('ssl_ecdh_curve: only the listed groups are used for the key exchange, TLS 1.2 and 1.3', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_ecdh_curve secp384r1:prime256v1; return 200 "ok"; }`), { t });
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    // prime256v1 last: a TLS 1.2 client must list the curve of the server's ECDSA key.
    assert.equal((await handshake(proxy.port, { maxVersion, ecdhCurve: 'X25519:secp384r1:prime256v1' }))?.kx, 'ECDH secp384r1', maxVersion);
    assert.equal(await handshake(proxy.port, { maxVersion, ecdhCurve: 'X25519' }), null, maxVersion);
  }
  const auto = await startTestProxy(conf(`server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; return 200 "ok"; }`), { t });
  assert.equal((await handshake(auto.port, { ecdhCurve: 'X25519' }))?.kx, 'ECDH X25519');
});

test('ssl_prefer_server_ciphers: on, the server\'s order wins; off, the client\'s', async (t) => {
  const certs = await testCerts();
  const server = (prefer: string): string => `server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384;
    ssl_prefer_server_ciphers ${prefer}; return 200 "ok"; }`;
  const client = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' } as const;
  const on = await startTestProxy(conf(server('on')), { t });
  const off = await startTestProxy(conf(server('off')), { t });
  assert.equal((await handshake(on.port, client))?.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  assert.equal((await handshake(off.port, client))?.cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
});

test('ssl_trusted_certificate verifies client certificates next to ssl_client_certificate', async (t) => {
  const certs = await testCerts();
  const server = (trusted: string): string => `server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_verify_client optional; ssl_client_certificate ${certs.otherCa.certFile};
    ${trusted} return 200 "$ssl_client_verify $ssl_client_s_dn"; }`;
  const client = { servername: 'localhost', cert: certs.client.cert, key: certs.client.key };
  const withTrusted = await startTestProxy(conf(server(`ssl_trusted_certificate ${certs.ca.certFile};`)), { t });
  assert.equal((await tlsGet(withTrusted.port, '/', client)).text, 'SUCCESS CN=test-client');
  const without = await startTestProxy(conf(server('')), { t });
  assert.equal((await tlsGet(without.port, '/', client)).head.statusCode, 400);
});

test('ssl_buffer_size is accepted; ssl_early_data off is accepted, on warns as nginx on a TLS library without 0-RTT and serves on; $ssl_early_data is empty', async (t) => {
  const certs = await testCerts();
  for (const flag of ['off', 'on']) {
    const text = conf(`server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_buffer_size 4k;
    ssl_early_data ${flag};
    return 200 "[$ssl_early_data]"; }`);
    const loaded = await loadConfig({ text });
    assert.ok(loaded.ok);
    assert.deepEqual(loaded.config.warnings.map((w) => formatProblem(w)),
      flag === 'on' ? ['[warn] "ssl_early_data" is not supported on this platform, ignored in <inline>:5'] : []);
    if (flag === 'on') assert.match(loaded.config.warnings[0]!.hint ?? '', /Node\.js offers no TLS 1\.3 early data \(0-RTT\)/);
    const proxy = await startTestProxy(text, { t });
    assert.equal((await tlsGet(proxy.port, '/', { servername: 'localhost' })).text, '[]');
  }
  const r = await loadConfig({ text: conf('  ssl_early_data maybe;\n  ssl_buffer_size 16q;\n  server { listen 127.0.0.1:0; }') });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    '[emerg] invalid value "maybe" in "ssl_early_data" directive, it must be "on" or "off" in <inline>:3',
    '[emerg] "ssl_buffer_size" directive invalid value in <inline>:4',
  ]);
});

test('-t: ssl_dhparam and ssl_ecdh_curve values that would not work', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const notDh = dir.write('not-dh.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const s = (n: number, lines: string): string => `  server { listen 127.0.0.${n}:0 ssl; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};\n    ${lines} }`;
  const r = await loadConfig({
    prefix: dir.path,
    text: conf([s(1, 'ssl_dhparam missing.pem;'), s(2, `ssl_dhparam ${notDh};`), s(3, 'ssl_ecdh_curve prime256v1:nosuchcurve;')].join('\n')),
  });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    `[emerg] BIO_new_file("${dir.join('missing.pem')}") failed (2: No such file or directory) in <inline>:4`,
    `[emerg] PEM_read_bio_DHparams("${notDh}") failed in <inline>:6`,
    '[emerg] SSL_CTX_set1_curves_list("prime256v1:nosuchcurve") failed in <inline>:8',
  ]);
});
