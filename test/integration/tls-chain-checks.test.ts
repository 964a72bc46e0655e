// Certificate chain checks on both sides, as nginx with OpenSSL 1.1.0+ makes them:
// proxy_ssl_verify_depth / ssl_verify_depth (the most intermediate CA certificates between the
// peer's certificate and the trusted root; default 1) and proxy_ssl_crl / ssl_crl (revocation
// lists; a revoked or expired-list certificate fails). Upstream failures are 502 with nginx's
// "upstream SSL certificate verify error" line; a client certificate that fails is nginx's 400
// "The SSL certificate error". The chains and CRLs are made at run time (scripts/certs.ts).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { certificateRevocationList, generateCertificates } from '../../scripts/certs.js';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { tlsGet } from '../helpers/tls-client.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';
import { tlsRefusalPage } from '../../src/proxy/front/tls-refusals.js';

interface Pem {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate followed by the intermediates a server or client sends with it. */
  readonly chain: string;
  readonly key: string;
}

interface Chains {
  readonly rootFile: string;
  /** Signed by the root; by one intermediate; by a second intermediate under the first. */
  readonly direct: Pem;
  readonly one: Pem;
  readonly two: Pem;
  readonly revoked: Pem;
  readonly clientDirect: Pem;
  readonly clientTwo: Pem;
  readonly clientRevoked: Pem;
  /** root.crl revokes `revoked` and `clientRevoked`; expired.crl revokes nothing and is past its nextUpdate. */
  readonly crlFile: string;
  readonly expiredCrlFile: string;
}

let made: Promise<Chains> | null = null;

function chains(): Promise<Chains> {
  made ??= (async () => {
    const dir = tempDir();
    process.once('exit', () => dir.cleanup());
    const g = await generateCertificates(dir.path, {
      cas: [
        { name: 'root', commonName: 'Chain Root' },
        { name: 'int', commonName: 'Chain Intermediate', issuer: 'root' },
        { name: 'int2', commonName: 'Chain Intermediate 2', issuer: 'int' },
      ],
      certs: [
        { name: 'direct', dnsNames: ['localhost'], ips: ['127.0.0.1'], issuer: 'root' },
        { name: 'one', dnsNames: ['localhost'], ips: ['127.0.0.1'], issuer: 'int' },
        { name: 'two', dnsNames: ['localhost'], ips: ['127.0.0.1'], issuer: 'int2' },
        { name: 'revoked', dnsNames: ['localhost'], ips: ['127.0.0.1'], issuer: 'root' },
        { name: 'client-direct', commonName: 'client-direct', usage: 'client', issuer: 'root' },
        { name: 'client-two', commonName: 'client-two', usage: 'client', issuer: 'int2' },
        { name: 'client-revoked', commonName: 'client-revoked', usage: 'client', issuer: 'root' },
      ],
    });
    const read = (f: string): string => readFileSync(f, 'utf8');
    const ca = (n: string): string => read(g.cas.get(n)!.cert);
    const pem = (name: string, intermediates: readonly string[]): Pem => {
      const c = g.certs.get(name)!;
      return { certFile: c.cert, keyFile: c.key, chain: read(c.cert) + intermediates.map(ca).join(''), key: read(c.key) };
    };
    const root = { cert: ca('root'), key: read(g.cas.get('root')!.key) };
    const serial = (name: string): string => new X509Certificate(read(g.certs.get(name)!.cert)).serialNumber;
    const crlFile = join(dir.path, 'root.crl');
    writeFileSync(crlFile, certificateRevocationList(root, [serial('revoked'), serial('client-revoked')]));
    const expiredCrlFile = join(dir.path, 'expired.crl');
    writeFileSync(expiredCrlFile, certificateRevocationList(root, [], -1));
    return {
      rootFile: g.cas.get('root')!.cert,
      direct: pem('direct', []), one: pem('one', ['int']), two: pem('two', ['int2', 'int']), revoked: pem('revoked', []),
      clientDirect: pem('client-direct', []), clientTwo: pem('client-two', ['int2', 'int']), clientRevoked: pem('client-revoked', []),
      crlFile, expiredCrlFile,
    };
  })();
  return made;
}

async function backendWith(t: { after(fn: () => unknown): void }, p: Pem): Promise<string> {
  const b = await startHttpsBackend({ cert: p.chain, key: p.key });
  t.after(() => b.close());
  return b.addr;
}

test('proxy_ssl_verify_depth: 1 by default (one intermediate), a deeper chain is 502 "certificate chain too long"; off ignores it', async (t) => {
  const c = await chains();
  const [direct, one, two] = [await backendWith(t, c.direct), await backendWith(t, c.one), await backendWith(t, c.two)];
  const verify = `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${c.rootFile};`;
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0;
      location /one/ { proxy_pass https://${one}/; ${verify} }
      location /two/ { proxy_pass https://${two}/; ${verify} }
      location /two-depth2/ { proxy_pass https://${two}/; ${verify} proxy_ssl_verify_depth 2; }
      location /direct-depth0/ { proxy_pass https://${direct}/; ${verify} proxy_ssl_verify_depth 0; }
      location /one-depth0/ { proxy_pass https://${one}/; ${verify} proxy_ssl_verify_depth 0; }
      location /two-unverified/ { proxy_pass https://${two}/; proxy_ssl_verify_depth 0; }
    }`), { t });
  const status = async (path: string): Promise<number> => {
    const r = await fetch(proxy.url(path));
    await r.text();
    return r.status;
  };
  assert.equal(await status('/one/'), 200);
  assert.equal(await status('/two-depth2/'), 200);
  assert.equal(await status('/direct-depth0/'), 200, 'no intermediate: depth 0 is enough');
  assert.equal(await status('/two-unverified/'), 200, 'with proxy_ssl_verify off the result of the checks is not used');
  const r = await fetch(proxy.url('/two/x'));
  assert.equal(r.status, 502);
  assert.equal(await r.text(), errorPage('502 Bad Gateway'));
  const line = await proxy.waitForErrorLine('certificate chain too long');
  assert.match(line, /\[error\] \d+#0: \*\d+ upstream SSL certificate verify error: \(22:certificate chain too long\) while SSL handshaking to upstream, client: 127\.0\.0\.1, server: , request: "GET \/two\/x HTTP\/1\.1", upstream: "https:\/\/127\.0\.0\.1:\d+\//);
  assert.equal(await status('/one-depth0/'), 502);
});

test('proxy_ssl_crl: a revoked upstream certificate is 502 "certificate revoked", an expired list fails every handshake', async (t) => {
  const c = await chains();
  const [direct, revoked, one] = [await backendWith(t, c.direct), await backendWith(t, c.revoked), await backendWith(t, c.one)];
  const verify = `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${c.rootFile};`;
  const proxy = await startTestProxy(conf(`
    proxy_ssl_crl ${c.crlFile};
    server { listen 127.0.0.1:0;
      location /one/ { proxy_pass https://${one}/; ${verify} }
      location /good/ { proxy_pass https://${direct}/; ${verify} }
      location /revoked/ { proxy_pass https://${revoked}/; ${verify} }
      location /no-crl/ { proxy_pass https://${revoked}/; ${verify} proxy_ssl_crl ${c.expiredCrlFile}; }
    }`), { t });
  const good = await fetch(proxy.url('/good/'));
  assert.equal(good.status, 200);
  await good.text();
  const bad = await fetch(proxy.url('/revoked/'));
  assert.equal(bad.status, 502);
  await bad.text();
  await proxy.waitForErrorLine('upstream SSL certificate verify error: (23:certificate revoked) while SSL handshaking to upstream');
  const expired = await fetch(proxy.url('/no-crl/'));
  assert.equal(expired.status, 502);
  await expired.text();
  await proxy.waitForErrorLine('upstream SSL certificate verify error: (12:CRL has expired) while SSL handshaking to upstream');
  // Every certificate of the chain needs a list from its issuer (CRL_CHECK_ALL): the intermediate has none.
  const noList = await fetch(proxy.url('/one/'));
  assert.equal(noList.status, 502);
  await noList.text();
  await proxy.waitForErrorLine('upstream SSL certificate verify error: (3:unable to get certificate CRL) while SSL handshaking to upstream');
});

test('ssl_verify_depth and ssl_crl for client certificates: nginx\'s 400 "The SSL certificate error"', async (t) => {
  const c = await chains();
  const server = (address: string, extra: string): string => `server { listen ${address}:0 ssl;
      ssl_certificate ${c.direct.certFile}; ssl_certificate_key ${c.direct.keyFile};
      ssl_verify_client on; ssl_client_certificate ${c.rootFile}; ${extra}
      location / { return 200 "verify=$ssl_client_verify dn=$ssl_client_s_dn"; } }`;
  const proxy = await startTestProxy(conf(`
    error_log stderr info;
    ${server('127.0.0.1', '')}
    ${server('127.0.0.2', 'ssl_verify_depth 2;')}
    ${server('127.0.0.3', `ssl_crl ${c.crlFile};`)}`), { t });
  const [byDefault, depth2, crl] = proxy.listeners;
  const get = (listener: { port: number; host: string }, p: Pem) =>
    tlsGet(listener.port, '/', { host: listener.host, servername: 'localhost', cert: p.chain, key: p.key, ca: readFileSync(c.rootFile, 'utf8') });
  const deep = await get(byDefault!, c.clientTwo);
  assert.equal(deep.head.statusCode, 400);
  assert.equal(deep.text, tlsRefusalPage(495));
  await proxy.waitForErrorLine('client SSL certificate verify error: (22:certificate chain too long) while reading client request headers');
  assert.equal((await get(byDefault!, c.clientDirect)).text, 'verify=SUCCESS dn=CN=client-direct');
  assert.equal((await get(depth2!, c.clientTwo)).text, 'verify=SUCCESS dn=CN=client-two');
  assert.equal((await get(crl!, c.clientDirect)).text, 'verify=SUCCESS dn=CN=client-direct');
  const revoked = await get(crl!, c.clientRevoked);
  assert.equal(revoked.head.statusCode, 400);
  assert.equal(revoked.text, tlsRefusalPage(495));
  await proxy.waitForErrorLine('client SSL certificate verify error: (23:certificate revoked)');
});

test('config errors: verify depths that are not numbers, CRL files that are missing or hold no CRL', async (t) => {
  const c = await chains();
  const dir = tempDir(t);
  const notCrl = dir.write('not.crl', 'hello\n');
  const r = await loadConfig({ prefix: dir.path, text: conf([
    '  ssl_verify_depth -1;',
    '  proxy_ssl_verify_depth deep;',
    '  proxy_ssl_crl missing.crl;',
    '  server { listen 127.0.0.1:8443;',
    `    ssl_certificate ${c.direct.certFile}; ssl_certificate_key ${c.direct.keyFile}; ssl_crl ${notCrl};`,
    '    location / { proxy_pass https://127.0.0.1:9443; }',
    '  }',
    `  server { listen 127.0.0.1:8444; location / { proxy_pass https://127.0.0.1:9443; proxy_ssl_crl ${c.crlFile}; } }`,
  ].join('\n')) });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    '[emerg] "ssl_verify_depth" directive invalid number in <inline>:3',
    '[emerg] "proxy_ssl_verify_depth" directive invalid number in <inline>:4',
    `[emerg] X509_LOOKUP_load_file("${dir.join('missing.crl')}") failed (2: No such file or directory) in <inline>:5`,
    `[emerg] X509_LOOKUP_load_file("${notCrl}") failed (no CRL in the file) in <inline>:7`,
  ]);
});
