// nginx (the installed 1.22) and Sluice side by side on TLS: which handshakes resume with the
// Mozilla generator's session lines (and without them), and the staple a client gets from
// ssl_stapling_file, and the CA names of a client-certificate request.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { testCerts } from '../helpers/certs.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { startOcspResponder } from '../helpers/ocsp-responder.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { tlsResumeGet, tlsStaple } from '../helpers/tls-client.js';

const staple = (port: number): Promise<Buffer | null> => tlsStaple(port, { servername: 'localhost' });

/** Whether each of three connections, each offering the previous one's session, resumed. */
async function resumptions(port: number, version: 'TLSv1.2' | 'TLSv1.3'): Promise<boolean[]> {
  let session: Buffer | null = null;
  const out: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await tlsResumeGet(port, '/', { resume: session, minVersion: version, maxVersion: version, servername: 'localhost' });
    out.push(r.reused);
    session = r.session ?? session;
  }
  return out;
}

test('e2e: session resumption with and without ssl_session_cache, tickets on and off, TLS 1.2 and 1.3', async (t) => {
  const certs = await testCerts();
  // ssl_protocols written out: nginx 1.22's default has no TLSv1.3 (1.23.4 added it).
  const cases = ['ssl_session_cache shared:SSL:1m; ssl_session_tickets off;', 'ssl_session_tickets off;', '', 'ssl_session_cache builtin:100 shared:X:1m;'];
  for (const lines of cases) {
    const ports = await nginxAndSluice(t, (port) => `server { listen 127.0.0.1:${port} ssl; ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile}; ssl_protocols TLSv1.2 TLSv1.3; ${lines} location / { return 200 "ok"; } }`);
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      assert.deepEqual(await resumptions(ports.sluice, version), await resumptions(ports.nginx, version), `${lines} ${version}`);
    }
  }
});

test('e2e: ssl_stapling_file: the client gets the same staple from both', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const responder = await startOcspResponder({ caCert: certs.ca.certFile, signerKey: certs.ca.keyFile, entries: [{ certFile: certs.localhost.certFile, status: 'good' }] });
  t.after(() => responder.close());
  // A staple made once by Sluice from the responder, saved as nginx's documentation suggests.
  const maker = await startTestProxy(`events {}\nhttp { server { listen 127.0.0.1:0 ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_stapling on; ssl_trusted_certificate ${certs.ca.certFile};
    ssl_stapling_responder ${responder.url}; return 200; } }`, { t });
  const saved = await (async () => {
    for (let i = 0; i < 50; i++) {
      const s = await staple(maker.port);
      if (s !== null) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no staple from the responder');
  })();
  const file = dir.write('staple.der', saved);
  const ports = await nginxAndSluice(t, (port) => `server { listen 127.0.0.1:${port} ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_stapling on; ssl_stapling_file ${file}; location / { return 200 "ok"; } }`);
  const fromNginx = await staple(ports.nginx);
  assert.ok(fromNginx !== null);
  assert.deepEqual(await staple(ports.sluice), fromNginx);
});

/**
 * The CA names a server's CertificateRequest lists, as `openssl s_client` prints them (run
 * asynchronously: Sluice serves from this very process).
 */
async function caNames(openssl: string, port: number): Promise<string[]> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(openssl, ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (out += d));
    child.stderr.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Acceptable client certificate CA names'));
  assert.notEqual(start, -1, `openssl printed no CA names:\n${stdout}`);
  const names: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.startsWith('Requested Signature') || l.startsWith('Client Certificate Types') || l.startsWith('---') || l.startsWith('Shared')) break;
    names.push(l.trim());
  }
  return names;
}

test('e2e: a CA named twice (in ssl_client_certificate and ssl_trusted_certificate) is listed once in the certificate request, as nginx lists it', async (t) => {
  const openssl = requireProgram('openssl', 'openssl');
  const certs = await testCerts();
  const dir = tempDir(t);
  const ca = readFileSync(certs.ca.certFile, 'utf8');
  const twice = dir.write('ca-twice.pem', `${ca}\n${ca}`);
  const ports = await nginxAndSluice(t, (port) => `server { listen 127.0.0.1:${port} ssl; ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile}; ssl_verify_client optional; ssl_client_certificate ${twice};
    ssl_trusted_certificate ${certs.ca.certFile}; location / { return 200 "ok"; } }`);
  const fromNginx = await caNames(openssl, ports.nginx);
  assert.equal(fromNginx.length, 1, fromNginx.join('\n'));
  assert.deepEqual(await caNames(openssl, ports.sluice), fromNginx);
});
