// ssl_conf_command and proxy_ssl_conf_command (nginx 1.19.4): the OpenSSL commands that map onto
// Node.js's TLS options (Ciphersuites, CipherString, Groups/Curves, SignatureAlgorithms,
// MinProtocol, MaxProtocol, Options) take effect after the other ssl settings, on the client
// side and towards upstreams; the others, and values OpenSSL refuses, are -t errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tlsConnect } from '../helpers/tls-client.js';
import { startHttpsBackend } from '../helpers/tls-backends.js';

test('ssl_conf_command: Ciphersuites and MaxProtocol decide the handshake; a server without lines keeps the defaults', async (t) => {
  const certs = await testCerts();
  const cert = `ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`;
  const proxy = await startTestProxy(conf(`
    ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;
    server { listen 127.0.0.1:0 ssl; ${cert} location / { return 200; } }
    server { listen 127.0.0.2:0 ssl; ${cert} ssl_conf_command MaxProtocol TLSv1.2; location / { return 200; } }
    server { listen 127.0.0.3:0 ssl; ${cert} ssl_ciphers HIGH; ssl_conf_command CipherString ECDHE-ECDSA-AES128-GCM-SHA256;
      ssl_conf_command MaxProtocol TLSv1.2; location / { return 200; } }`), { t });
  const [suites, tls12, cipherString] = proxy.listeners;
  const handshake = async (l: { host: string; port: number }): Promise<[string | null, string | undefined]> => {
    const s = await tlsConnect(l.port, { host: l.host, servername: 'localhost' });
    try {
      return [s.getProtocol(), s.getCipher()?.name];
    } finally {
      s.destroy();
    }
  };
  assert.deepEqual(await handshake(suites!), ['TLSv1.3', 'TLS_CHACHA20_POLY1305_SHA256'], 'the only TLS 1.3 suite left');
  const [protocol] = await handshake(tls12!);
  assert.equal(protocol, 'TLSv1.2', 'a server with lines of its own inherits none of http\'s, and its MaxProtocol applies');
  assert.deepEqual(await handshake(cipherString!), ['TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256'], 'CipherString replaces ssl_ciphers');
});

test('proxy_ssl_conf_command: MaxProtocol to the upstream', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpsBackend({ cert: certs.localhost.cert, key: certs.localhost.key });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0;
      location /12/ { proxy_pass https://${backend.addr}/; proxy_ssl_conf_command MaxProtocol TLSv1.2; }
      location / { proxy_pass https://${backend.addr}/; }
    }`), { t });
  for (const path of ['/12/', '/']) {
    const r = await fetch(proxy.url(path));
    assert.equal(r.status, 200);
    await r.text();
  }
  assert.deepEqual(backend.handshakes.map((h) => h.protocol), ['TLSv1.2', 'TLSv1.3']);
});

test('ssl_conf_command config errors: unsupported commands, values OpenSSL refuses, lines that conflict', async () => {
  const certs = await testCerts();
  const r = await loadConfig({ prefix: '/tmp', text: conf([
    '  ssl_conf_command Foo bar;',
    '  ssl_conf_command Ciphersuites TLS_BOGUS;',
    '  proxy_ssl_conf_command Options ServerPreference,Bogus;',
    '  server { listen 127.0.0.1:8443 ssl;',
    `    ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`,
    '    ssl_conf_command MinProtocol TLSv1.3; ssl_conf_command maxprotocol TLSv1.2;',
    '  }',
  ].join('\n')) });
  assert.equal(r.ok, false);
  const problems = r.ok ? [] : r.problems;
  assert.deepEqual(problems.map((p) => formatProblem(p)), [
    '[emerg] SSL_CONF_cmd("Foo", "bar") failed in <inline>:3',
    '[emerg] SSL_CONF_cmd("Ciphersuites", "TLS_BOGUS") failed in <inline>:4',
    '[emerg] SSL_CONF_cmd("Options", "ServerPreference,Bogus") failed in <inline>:5',
    '[emerg] the "ssl_conf_command" lines cannot be applied: the lowest protocol TLSv1.3 is above the highest TLSv1.2 in <inline>:6',
  ]);
  assert.match(problems[0]!.hint ?? '', /Ciphersuites, CipherString, Groups, Curves, SignatureAlgorithms, MinProtocol, MaxProtocol, Options/);
  assert.match(problems[1]!.hint ?? '', /OpenSSL refuses the value/);
  assert.match(problems[2]!.hint ?? '', /unknown option "Bogus"/);
});
