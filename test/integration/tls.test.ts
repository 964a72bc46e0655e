// TLS to clients (BEHAVIOURS.md 35, docs/configuration.md "TLS"): wss through a TLS listener to a
// plain backend, SNI among several certificates, mutual TLS, the $ssl_* and $scheme variables,
// nginx's 400 for plain HTTP on a TLS port, ssl_protocols, and a reload that changes certificates.
// Certificates are made at run time (test/helpers/certs.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  SAMPLE_ACCEPT, headerValue, maskedFrame, parseResponseHead, rawRequest, readFrame, readToEnd, waitForBytes, wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { tlsConnect, tlsGet } from '../helpers/tls-client.js';
import { Opcode } from '../../src/websocket/opcodes.js';

const WAIT_MS = 10_000;

/** nginx's special 400 page, signed sluice. */
function page400(text: string): string {
  return `<html>\r\n<head><title>400 ${text}</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n`
    + `<center>${text}</center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n`;
}

test('35: a wss client reaches a plain ws backend through a TLS listener: pipelined first frame, 49 KB frames both ways', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend(undefined, { id: 'plain-echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; }
  }
}`, { t });
  const socket = await tlsConnect(proxy.port, { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(socket.authorized, true);
  // The first frame rides in the same TLS record as the handshake request.
  const first = maskedFrame(Opcode.TEXT, 'pipelined hello');
  socket.write(Buffer.concat([Buffer.from(wsHandshakeRequest({ host: 'localhost', path: '/chat' }), 'latin1'), first]));
  const head = parseResponseHead(await waitForBytes(socket, '\r\n\r\n', WAIT_MS));
  recorderFor(socket).consume(head.headLength);
  assert.equal(head.statusCode, 101);
  assert.equal(headerValue(head, 'sec-websocket-accept'), SAMPLE_ACCEPT);
  const echoed = await readFrame(socket, WAIT_MS);
  assert.equal(echoed.opcode, Opcode.TEXT);
  assert.equal(echoed.payload.toString(), 'pipelined hello');

  const text = randomBytes(49 * 1024 / 2).toString('hex');
  socket.write(maskedFrame(Opcode.TEXT, text));
  const textBack = await readFrame(socket, WAIT_MS);
  assert.equal(textBack.opcode, Opcode.TEXT);
  assert.equal(textBack.payload.length, 49 * 1024);
  assert.equal(textBack.payload.toString(), text);

  const binary = randomBytes(49 * 1024);
  socket.write(maskedFrame(Opcode.BINARY, binary));
  const binaryBack = await readFrame(socket, WAIT_MS);
  assert.equal(binaryBack.opcode, Opcode.BINARY);
  assert.ok(binaryBack.payload.equals(binary), '49 KB binary frame came back intact');

  const upgrade = backend.requests.find((r) => r.upgrade);
  assert.equal(upgrade?.url, '/chat');
  assert.equal(upgrade?.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
});

test('$scheme is https, X-Forwarded-Proto says https, and $ssl_* describe the handshake', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / {
      proxy_pass http://${backend.addr};
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Https $https;
      proxy_set_header X-Ssl "$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_client_verify|$ssl_alpn_protocol|$ssl_session_reused";
    }
  }
}`, { t });
  const res = await tlsGet(proxy.port, '/x?y=1', { servername: 'localhost', ca: certs.ca.cert, ALPNProtocols: ['http/1.1'], keep: true, timeoutMs: WAIT_MS });
  t.after(() => res.socket.destroy());
  assert.equal(res.head.statusCode, 200);
  const seen = backend.requests[0]!;
  assert.equal(seen.url, '/x?y=1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-https'], 'on');
  const client = res.socket as TLSSocket;
  assert.equal(seen.headers['x-ssl'], `${client.getProtocol()}|${client.getCipher().name}|localhost|NONE|http/1.1|.`);
  assert.equal(client.getProtocol(), 'TLSv1.3');
});

test('35: SNI picks the certificate (and the server) among servers on one TLS address; no or unknown SNI gets the default server', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name a.test;
    ssl_certificate ${certs.a.certFile};
    ssl_certificate_key ${certs.a.keyFile};
    location / { return 200 "server a, sni '$ssl_server_name'"; }
  }
  server {
    listen 127.0.0.1:0 ssl default_server;
    server_name b.test *.b.test;
    ssl_certificate ${certs.b.certFile};
    ssl_certificate_key ${certs.b.keyFile};
    location / { return 200 "server b, sni '$ssl_server_name'"; }
  }
}`, { t });
  const cases: [string | undefined, string, string, string][] = [
    // [SNI name, Host header, certificate CN, body]
    ['a.test', 'a.test', 'a.test', "server a, sni 'a.test'"],
    ['b.test', 'b.test', 'b.test', "server b, sni 'b.test'"],
    ['x.b.test', 'x.b.test', 'b.test', "server b, sni 'x.b.test'"],
    ['unknown.test', 'unknown.test', 'b.test', "server b, sni 'unknown.test'"],
    [undefined, 'a.test', 'b.test', "server a, sni ''"],
  ];
  for (const [sni, host, cn, body] of cases) {
    const res = await tlsGet(proxy.port, '/', {
      ...(sni === undefined ? {} : { servername: sni }), hostHeader: host, keep: true, timeoutMs: WAIT_MS,
    });
    res.socket.destroy();
    assert.equal(res.peerCN, cn, `certificate for SNI ${String(sni)}`);
    assert.equal(res.head.statusCode, 200);
    assert.equal(res.text, body, `answer for SNI ${String(sni)}, Host ${host}`);
  }
  // The certificate chosen for a.test verifies against the test CA for that name.
  const verified = await tlsConnect(proxy.port, { servername: 'a.test', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(verified.authorized, true);
  verified.destroy();
});

test('mutual TLS: ssl_verify_client on accepts a certificate from the CA and answers 400 without one or with an untrusted one', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
error_log stderr info;
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ssl_client_certificate ${certs.ca.certFile};
    ssl_verify_client on;
    location / {
      proxy_pass http://${backend.addr};
      proxy_set_header X-Client "$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn";
    }
  }
}`, { t });
  const base = { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS };

  const ok = await tlsGet(proxy.port, '/ok', { ...base, cert: certs.client.cert, key: certs.client.key });
  assert.equal(ok.head.statusCode, 200);
  assert.equal(backend.requests.length, 1);
  assert.equal(backend.requests[0]!.headers['x-client'], 'SUCCESS|CN=test-client|CN=Sluice Test CA');

  const none = await tlsGet(proxy.port, '/none', base);
  assert.equal(none.head.statusCode, 400);
  assert.equal(headerValue(none.head, 'connection'), 'close');
  assert.equal(none.text, page400('No required SSL certificate was sent'));
  await proxy.waitForErrorLine('client sent no required SSL certificate while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET /none HTTP/1.1"');

  const bad = await tlsGet(proxy.port, '/bad', { ...base, cert: certs.otherClient.cert, key: certs.otherClient.key });
  assert.equal(bad.head.statusCode, 400);
  assert.equal(bad.text, page400('The SSL certificate error'));
  await proxy.waitForErrorLine('client SSL certificate verify error: (21:unable to verify the first certificate) while reading client request headers');

  // A WebSocket upgrade without a certificate is refused the same way, on the raw socket.
  const ws = await tlsConnect(proxy.port, base);
  t.after(() => ws.destroy());
  ws.write(wsHandshakeRequest({ host: 'localhost' }));
  const refused = await readToEnd(ws, WAIT_MS);
  assert.match(refused.toString('latin1'), /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.ok(refused.toString('latin1').endsWith(page400('No required SSL certificate was sent')));
  assert.equal(backend.requests.length, 1, 'refused requests never reach the backend');
});

test('421: a Host other than the SNI name on a server that verifies client certificates (nginx 1.22), not on one that does not', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
error_log stderr info;
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ssl_client_certificate ${certs.ca.certFile};
    ssl_verify_client optional;
    location / { proxy_pass http://${backend.addr}; }
  }
}`, { t });
  const base = { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS, cert: certs.client.cert, key: certs.client.key };
  const other = await tlsGet(proxy.port, '/x', { ...base, hostHeader: 'other.test' });
  assert.equal(other.head.statusCode, 421);
  assert.match(other.text, /<title>421 Misdirected Request<\/title>/);
  await proxy.waitForErrorLine('client attempted to request the server name different from the one that was negotiated while reading client request headers');
  const same = await tlsGet(proxy.port, '/y', { ...base, hostHeader: 'LOCALHOST:443' });
  assert.equal(same.head.statusCode, 200, 'the same name, any case, a port');
  assert.deepEqual(backend.requests.map((r) => r.url), ['/y']);
  const plain = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; }
  }
}`, { t });
  const open = await tlsGet(plain.port, '/z', { ...base, hostHeader: 'other.test' });
  assert.equal(open.head.statusCode, 200, 'no ssl_verify_client: no 421');
});

test('mutual TLS: ssl_verify_client optional lets a client without a certificate through with $ssl_client_verify NONE', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ssl_client_certificate ${certs.ca.certFile};
    ssl_verify_client optional;
    location / { return 200 "verify=$ssl_client_verify dn=$ssl_client_s_dn"; }
  }
}`, { t });
  const none = await tlsGet(proxy.port, '/', { servername: 'localhost', timeoutMs: WAIT_MS });
  assert.equal(none.head.statusCode, 200);
  assert.equal(none.text, 'verify=NONE dn=');
  const withCert = await tlsGet(proxy.port, '/', { servername: 'localhost', cert: certs.client.cert, key: certs.client.key, timeoutMs: WAIT_MS });
  assert.equal(withCert.text, 'verify=SUCCESS dn=CN=test-client');
  const bad = await tlsGet(proxy.port, '/', { servername: 'localhost', cert: certs.otherClient.cert, key: certs.otherClient.key, timeoutMs: WAIT_MS });
  assert.equal(bad.head.statusCode, 400, 'optional still refuses a certificate that does not verify');
  assert.equal(bad.text, page400('The SSL certificate error'));
});

test('a plain HTTP request (or ws:// upgrade) to a TLS port gets nginx\'s 400 "The plain HTTP request was sent to HTTPS port"', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
error_log stderr info;
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { return 200 "tls only"; }
  }
}`, { t });
  const res = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: 'close', timeoutMs: WAIT_MS });
  assert.equal(res.head?.statusCode, 400);
  assert.equal(res.head?.reason, 'Bad Request');
  assert.equal(headerValue(res.head!, 'connection'), 'close');
  assert.equal(headerValue(res.head!, 'content-type'), 'text/html');
  assert.equal(res.body.toString('latin1'), page400('The plain HTTP request was sent to HTTPS port'));
  assert.equal(res.closed, true);
  await proxy.waitForErrorLine('client sent plain HTTP request to HTTPS port while reading client request headers, client: 127.0.0.1, server: localhost, request: "GET /plain HTTP/1.1", host: "localhost"');

  const ws = await rawRequest(proxy.port, wsHandshakeRequest({ host: 'localhost' }), { until: 'close', timeoutMs: WAIT_MS });
  assert.equal(ws.head?.statusCode, 400);
  assert.equal(ws.body.toString('latin1'), page400('The plain HTTP request was sent to HTTPS port'));

  // The port still speaks TLS afterwards.
  const ok = await tlsGet(proxy.port, '/', { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(ok.text, 'tls only');
});

test('ssl_protocols limits the versions a client may use; a failed handshake is logged at info', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
error_log stderr info;
http {
  server {
    listen 127.0.0.1:0 ssl;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ssl_protocols TLSv1.2;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;
    location / { return 200 "$ssl_protocol $ssl_cipher"; }
  }
}`, { t });
  const res = await tlsGet(proxy.port, '/', { servername: 'localhost', timeoutMs: WAIT_MS });
  assert.equal(res.text, 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
  await assert.rejects(tlsConnect(proxy.port, { servername: 'localhost', minVersion: 'TLSv1.3', timeoutMs: WAIT_MS }), /protocol|version|alert/i);
  await proxy.waitForErrorLine(/\[info\] .*SSL_do_handshake\(\) failed \(SSL: .*\) while SSL handshaking, client: 127\.0\.0\.1, server: 127\.0\.0\.1:0/);
});

test('an encrypted key opens with ssl_password_file, and a reload swaps the certificate without closing the port', async (t) => {
  const certs = await testCerts();
  const { tempDir } = await import('../helpers/temp.js');
  const dir = tempDir(t);
  const passwords = dir.write('passwords', 'not-this-one\nsluice-test-passphrase\n');
  const config = (cert: string, key: string, extra = ''): string => `
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ${extra}
    location / { return 200 "hello"; }
  }
}`;
  const proxy = await startTestProxy(config(certs.localhost.certFile, certs.localhost.encryptedKeyFile!, `ssl_password_file ${passwords};`), { t });
  const before = await tlsGet(proxy.port, '/', { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(before.text, 'hello');
  assert.equal(before.peerCN, 'localhost');

  // The same listen key (127.0.0.1:0) keeps its socket: the port stays, the certificate changes.
  await proxy.handle.reload({ text: config(certs.b.certFile, certs.b.keyFile) });
  const after = await tlsGet(proxy.port, '/', { servername: 'b.test', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(after.text, 'hello');
  assert.equal(after.peerCN, 'b.test');
});

test('421 over HTTP/2: an :authority other than the SNI name on a server that verifies client certificates', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
error_log stderr info;
http {
  server {
    listen 127.0.0.1:0 ssl http2;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ssl_client_certificate ${certs.ca.certFile};
    ssl_verify_client optional;
    location / { proxy_pass http://${backend.addr}; }
  }
}`, { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, servername: 'localhost', timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const other = await h2Request(client, { ':path': '/x', ':authority': 'other.test' }, undefined, WAIT_MS);
  assert.equal(other.status, 421);
  await proxy.waitForErrorLine('client attempted to request the server name different from the one that was negotiated while reading client request headers');
  const same = await h2Request(client, { ':path': '/y', ':authority': 'localhost' }, undefined, WAIT_MS);
  assert.equal(same.status, 200);
  assert.deepEqual(backend.requests.map((r) => r.url), ['/y']);
});
