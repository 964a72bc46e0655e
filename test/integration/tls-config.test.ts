// `sluice -t` for TLS: every problem with certificates and keys is found when the config is loaded,
// reported with file:line and a hint (missing or unreadable files, files that are not PEM, a key that
// does not match its certificate or does not open, an ssl listen without a certificate), as nginx does.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import type { ConfigProblem } from '../../src/config/types.js';
import { testCerts } from '../helpers/certs.js';
import { ROOT, runCli, runNode } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { tempDir } from '../helpers/temp.js';
import { escapeRegExp } from '../helpers/text.js';

/** `events {}` and an http block whose lines start at line 3. */
const httpLines = (...lines: string[]): string => conf(lines.join('\n'));

async function problems(text: string, prefix: string): Promise<ConfigProblem[]> {
  const r = await loadConfig({ text, prefix });
  assert.equal(r.ok, false, 'the config should be rejected');
  return r.ok ? [] : r.problems;
}

function messages(list: readonly ConfigProblem[]): string[] {
  return list.map((p) => formatProblem(p));
}

test('a missing, unreadable or non-PEM certificate or key is reported at its line with the path', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const notPem = dir.write('not-pem.crt', 'hello\n');
  const list = await problems(httpLines(
    '  server { listen 8443 ssl;',
    '    ssl_certificate missing.crt;',
    `    ssl_certificate_key ${certs.localhost.keyFile};`,
    '  }',
    '  server { listen 8444 ssl;',
    `    ssl_certificate ${dir.path};`,
    '    ssl_certificate_key missing.key;',
    '  }',
    '  server { listen 8445 ssl;',
    `    ssl_certificate ${notPem};`,
    `    ssl_certificate_key ${notPem};`,
    '  }',
  ), dir.path);
  assert.deepEqual(messages(list), [
    `[emerg] cannot load certificate "${dir.join('missing.crt')}": BIO_new_file() failed (2: No such file or directory) in <inline>:4`,
    `[emerg] cannot load certificate "${dir.path}": BIO_new_file() failed (21: Is a directory) in <inline>:8`,
    `[emerg] cannot load certificate key "${dir.join('missing.key')}": BIO_new_file() failed (2: No such file or directory) in <inline>:9`,
    `[emerg] cannot load certificate "${notPem}": PEM_read_bio_X509_AUX() failed (no start line) in <inline>:12`,
    `[emerg] cannot load certificate key "${notPem}": PEM_read_bio_PrivateKey() failed (no start line) in <inline>:13`,
  ]);
  assert.match(list[0]!.hint ?? '', /relative path starts at the prefix/);
  assert.match(list[3]!.hint ?? '', /BEGIN CERTIFICATE/);
});

test('a key that does not match its certificate, and an ssl listen without any certificate', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const list = await problems(httpLines(
    '  server {',
    '    listen 8443 ssl;',
    `    ssl_certificate ${certs.a.certFile};`,
    `    ssl_certificate_key ${certs.b.keyFile};`,
    '  }',
    '  server {',
    '    listen 8443;',
    '    server_name other;',
    '  }',
  ), dir.path);
  assert.deepEqual(messages(list), [
    `[emerg] SSL_CTX_use_PrivateKey("${certs.b.keyFile}") failed (key values mismatch) in <inline>:6`,
    // The second server shares the ssl address (nginx ORs "ssl" per address), so it needs a certificate too.
    '[emerg] no "ssl_certificate" is defined for the "listen ... ssl" directive in <inline>:8',
  ]);
  assert.match(list[0]!.hint ?? '', new RegExp(`does not belong to the certificate "${escapeRegExp(certs.a.certFile)}"`));
  assert.match(list[1]!.hint ?? '', /add "ssl_certificate FILE;" and "ssl_certificate_key FILE;"/);
});

test('encrypted keys: no ssl_password_file, a wrong pass phrase, a missing password file; the right one loads', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const wrong = dir.write('wrong.pass', 'nope\n');
  const right = dir.write('right.pass', 'nope\nsluice-test-passphrase\n');
  const server = (extra: string, port: number): string[] => [
    `  server { listen ${port} ssl;`,
    `    ssl_certificate ${certs.localhost.certFile};`,
    `    ssl_certificate_key ${certs.localhost.encryptedKeyFile!};`,
    `    ${extra}`,
    '  }',
  ];
  const list = await problems(httpLines(
    ...server('', 8443),
    ...server(`ssl_password_file ${wrong};`, 8444),
    ...server('ssl_password_file missing.pass;', 8445),
  ), dir.path);
  assert.deepEqual(messages(list), [
    `[emerg] cannot load certificate key "${certs.localhost.encryptedKeyFile!}": the key is encrypted and no pass phrase was given in <inline>:5`,
    `[emerg] cannot load certificate key "${certs.localhost.encryptedKeyFile!}": PEM_read_bio_PrivateKey() failed (bad decrypt) in <inline>:10`,
    `[emerg] open() "${dir.join('missing.pass')}" failed (2: No such file or directory) in <inline>:16`,
  ]);
  assert.match(list[0]!.hint ?? '', /ssl_password_file FILE/);
  assert.match(list[1]!.hint ?? '', /none of the pass phrases/);

  const ok = await loadConfig({ text: httpLines(...server(`ssl_password_file ${right};`, 8443)), prefix: dir.path });
  assert.equal(ok.ok, true, ok.ok ? '' : messages(ok.problems).join('\n'));
  if (ok.ok) assert.equal(ok.config.http!.servers[0]!.tls!.certificates[0]!.passphrase, 'sluice-test-passphrase');
});

test('a certificate written in http {} and inherited by two servers is read once and reported once', async (t) => {
  const dir = tempDir(t);
  const list = await problems(httpLines(
    '  ssl_certificate nope.crt;',
    '  ssl_certificate_key nope.key;',
    '  server { listen 8443 ssl; server_name a; }',
    '  server { listen 8444 ssl; server_name b; }',
  ), dir.path);
  assert.deepEqual(messages(list), [
    `[emerg] cannot load certificate "${dir.join('nope.crt')}": BIO_new_file() failed (2: No such file or directory) in <inline>:3`,
    `[emerg] cannot load certificate key "${dir.join('nope.key')}": BIO_new_file() failed (2: No such file or directory) in <inline>:4`,
  ]);
});

test('relative certificate paths start at the prefix; the loaded config carries the PEM text and the listen flags', async () => {
  const certs = await testCerts();
  const r = await loadConfig({
    text: httpLines(
      '  server { listen 127.0.0.1:8443 ssl http2;',
      '    ssl_certificate localhost.crt; ssl_certificate_key localhost.key;',
      '    ssl_protocols TLSv1.3; ssl_session_timeout 10m; ssl_session_tickets off; ssl_prefer_server_ciphers on;',
      `    ssl_client_certificate ca.crt; ssl_verify_client optional; http2 on;`,
      '  }',
    ),
    prefix: certs.dir,
  });
  assert.equal(r.ok, true, r.ok ? '' : messages(r.problems).join('\n'));
  if (!r.ok) return;
  const s = r.config.http!.servers[0]!;
  assert.equal(s.listens[0]!.ssl, true);
  assert.equal(s.listens[0]!.http2, true);
  assert.equal(s.tls!.certificates[0]!.cert, certs.localhost.cert);
  assert.equal(s.tls!.certificates[0]!.certFile, join(certs.dir, 'localhost.crt'));
  assert.equal(s.tls!.clientCa, certs.ca.cert);
  assert.deepEqual(s.settings.ssl.protocols, ['TLSv1.3']);
  assert.equal(s.settings.ssl.sessionTimeout, 600_000);
  assert.equal(s.settings.ssl.sessionTickets, false);
  assert.equal(s.settings.ssl.preferServerCiphers, true);
  assert.equal(s.settings.ssl.verifyClient, 'optional');
  assert.equal(s.settings.http2, true);
});

test('directive values: ssl_protocols, ssl_verify_client, variables in paths, ssl_verify_client without a CA, proxy_ssl_*', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const list = await problems(httpLines(
    '  ssl_protocols TLSv1.2 SSLv3;',
    '  ssl_protocols TLSv1.4;',
    '  ssl_verify_client optional_no_ca;',
    '  ssl_verify_client maybe;',
    '  ssl_certificate $ssl_server_name.crt;',
    '  server { listen 8443 ssl;',
    `    ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`,
    '    ssl_verify_client on;',
    '    location / {',
    '      proxy_pass https://127.0.0.1:9443;',
    '      proxy_ssl_trusted_certificate missing-ca.crt;',
    `      proxy_ssl_certificate ${certs.client.certFile};`,
    '    }',
    '  }',
  ), dir.path);
  assert.deepEqual(messages(list), [
    '[emerg] invalid value "SSLv3" in <inline>:3',
    '[emerg] "ssl_protocols" directive is duplicate in <inline>:4',
    '[emerg] the "optional_no_ca" value of "ssl_verify_client" is not implemented in <inline>:5',
    '[emerg] "ssl_verify_client" directive is duplicate in <inline>:6',
    '[emerg] variables in "ssl_certificate" are not supported "$ssl_server_name.crt" in <inline>:7',
    '[emerg] no ssl_client_certificate for ssl_verify_client in <inline>:8',
    `[emerg] cannot load trusted certificates "${dir.join('missing-ca.crt')}": BIO_new_file() failed (2: No such file or directory) in <inline>:13`,
    `[emerg] no "proxy_ssl_certificate_key" is defined for certificate "${certs.client.certFile}" in <inline>:14`,
  ]);
  assert.match(list[0]!.hint ?? '', /insecure/);
  const bad = await problems(httpLines('  ssl_protocols TLSv1.4;', '  ssl_verify_client maybe;'), dir.path);
  assert.deepEqual(messages(bad), [
    '[emerg] invalid value "TLSv1.4" in <inline>:3',
    '[emerg] invalid value "maybe" in "ssl_verify_client" directive, it must be "on", "off", "optional" or "optional_no_ca" in <inline>:4',
  ]);
  assert.match(bad[0]!.hint ?? '', /TLSv1 TLSv1\.1 TLSv1\.2 TLSv1\.3/);
});

test('sluice -t prints a certificate problem in nginx\'s format and exits 1', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const file = dir.write('tls.conf', httpLines(
    '  server { listen 8443 ssl;',
    `    ssl_certificate ${certs.a.certFile};`,
    `    ssl_certificate_key ${certs.b.keyFile};`,
    '  }',
  ));
  const { code, stderr } = await runCli(['-t', '-c', file]);
  const lines = stderr.split('\n');
  assert.equal(lines[0], `sluice: [emerg] SSL_CTX_use_PrivateKey("${certs.b.keyFile}") failed (key values mismatch) in ${file}:5`);
  assert.match(lines[1] ?? '', /^ {2}hint: the key does not belong to the certificate/);
  assert.equal(lines.at(-2), `sluice: configuration file ${file} test failed`);
  assert.equal(code, 1);
});

test('`npm run certs` writes a CA and certificates that chain to it, with no program but node (no openssl); examples/tls/wss-h2.conf passes with them', async (t) => {
  const dir = tempDir(t);
  const out = join(dir.path, 'certs');
  const res = await runNode(join(ROOT, 'dist', 'scripts', 'certs.js'), [out], ROOT, { PATH: dir.join('no-programs') });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, new RegExp(`wrote a local CA and certificates to ${escapeRegExp(out)}`));
  const ca = new X509Certificate(readFileSync(join(out, 'ca.crt')));
  const leaf = new X509Certificate(readFileSync(join(out, 'localhost.crt')));
  assert.equal(ca.ca, true);
  assert.equal(leaf.verify(ca.publicKey), true);
  assert.equal(leaf.checkHost('localhost'), 'localhost');
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leaf.checkIP('::1'), '::1');
  const client = new X509Certificate(readFileSync(join(out, 'client.crt')));
  assert.equal(client.verify(ca.publicKey), true);
  assert.equal(client.checkHost('localhost'), undefined);

  // The example's paths are ../../certs from its directory: a prefix two levels under `dir` finds them.
  const example = join(ROOT, 'examples', 'tls', 'wss-h2.conf');
  const r = await loadConfig({ file: example, prefix: join(dir.path, 'a', 'b') });
  assert.equal(r.ok, true, r.ok ? '' : messages(r.problems).join('\n'));
  if (r.ok) {
    const server = r.config.http!.servers[0]!;
    assert.equal(server.listens[0]!.ssl, true);
    assert.equal(server.listens[0]!.http2, true);
    assert.equal(server.tls!.certificates[0]!.certFile, join(out, 'localhost.crt'));
  }
});
