// TLS session resumption as nginx configures it: ssl_session_cache (builtin and shared, TLS 1.2
// session ids and TLS 1.3 stateful tickets), ssl_session_tickets, ssl_session_ticket_key (nginx's
// 48- and 80-byte files) and ssl_session_timeout, on real TLS connections; shared caches and
// ticket keys across worker processes; and what `-t` says about bad values.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { testCerts, type TestCerts } from '../helpers/certs.js';
import { CliProcess } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { tlsResumeGet } from '../helpers/tls-client.js';
import { waitFor } from '../helpers/wait.js';

type Version = 'TLSv1.2' | 'TLSv1.3';

/** One ssl server answering "$ssl_session_reused $pid" with the given ssl lines. */
function sslServer(certs: TestCerts, lines: string, port = 0): string {
  return `server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ${lines}
    location / { return 200 "$ssl_session_reused $pid"; }
  }`;
}

/** Connects `times` times, each offering the session the previous connection got; the `reused` flags and bodies. */
async function chain(port: number, version: Version, times: number, extra: { ca?: string } = {}): Promise<{ reused: boolean[]; texts: string[]; session: Buffer | null }> {
  let session: Buffer | null = null;
  const reused: boolean[] = [];
  const texts: string[] = [];
  for (let i = 0; i < times; i++) {
    const r = await tlsResumeGet(port, '/', { resume: session, minVersion: version, maxVersion: version, servername: 'localhost', ...extra });
    reused.push(r.reused);
    texts.push(r.text);
    session = r.session ?? session;
  }
  return { reused, texts, session };
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`${version}: ssl_session_cache resumes sessions without tickets; nginx's default "none" does not`, async (t) => {
    const certs = await testCerts();
    const cached = await startTestProxy(conf(sslServer(certs, 'ssl_session_cache shared:SSL:1m; ssl_session_tickets off;')), { t });
    const r = await chain(cached.port, version, 3);
    assert.deepEqual(r.reused, [false, true, true]);
    // $ssl_session_reused agrees with the client: "r" when resumed, "." otherwise.
    assert.deepEqual(r.texts.map((x) => x.split(' ')[0]), ['.', 'r', 'r']);

    const builtin = await startTestProxy(conf(sslServer(certs, 'ssl_session_cache builtin:1000; ssl_session_tickets off;')), { t });
    assert.deepEqual((await chain(builtin.port, version, 2)).reused, [false, true]);

    const none = await startTestProxy(conf(sslServer(certs, 'ssl_session_tickets off;')), { t });
    assert.deepEqual((await chain(none.port, version, 3)).reused, [false, false, false]);
    const off = await startTestProxy(conf(sslServer(certs, 'ssl_session_cache off; ssl_session_tickets off;')), { t });
    assert.deepEqual((await chain(off.port, version, 2)).reused, [false, false]);
  });
}

test('session tickets resume by default and not with "ssl_session_tickets off" (no cache)', async (t) => {
  const certs = await testCerts();
  const tickets = await startTestProxy(conf(sslServer(certs, '')), { t });
  const plain = await startTestProxy(conf(sslServer(certs, 'ssl_session_tickets off;')), { t });
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    assert.deepEqual((await chain(tickets.port, version, 2)).reused, [false, true], version);
    assert.deepEqual((await chain(plain.port, version, 2)).reused, [false, false], version);
  }
});

test('ssl_session_timeout: a cached session older than the timeout is not resumed', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(sslServer(certs, 'ssl_session_cache shared:SSL:1m; ssl_session_tickets off; ssl_session_timeout 1s;')), { t });
  const first = await tlsResumeGet(proxy.port, '/', { maxVersion: 'TLSv1.2', servername: 'localhost' });
  const soon = await tlsResumeGet(proxy.port, '/', { maxVersion: 'TLSv1.2', servername: 'localhost', resume: first.session });
  assert.equal(soon.reused, true);
  // Whole seconds: OpenSSL stamps sessions with second precision.
  await new Promise((r) => setTimeout(r, 2_100));
  const late = await tlsResumeGet(proxy.port, '/', { maxVersion: 'TLSv1.2', servername: 'localhost', resume: first.session });
  assert.equal(late.reused, false);
});

test('a shared cache across addresses: a session resumes where it was made, not where another certificate is the default', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`
    ssl_session_cache shared:SSL:1m;
    ssl_session_tickets off;
    server { listen 127.0.0.1:0 ssl; server_name a.test; ssl_certificate ${certs.a.certFile}; ssl_certificate_key ${certs.a.keyFile};
      location / { return 200 "a $ssl_session_reused"; } }
    server { listen 127.0.0.2:0 ssl; server_name b.test; ssl_certificate ${certs.b.certFile}; ssl_certificate_key ${certs.b.keyFile};
      location / { return 200 "b $ssl_session_reused"; } }`), { t });
  const [a, b] = proxy.listeners;
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const opts = { maxVersion: version, minVersion: version } as const;
    const a1 = await tlsResumeGet(a!.port, '/', { ...opts, servername: 'a.test' });
    const a2 = await tlsResumeGet(a!.port, '/', { ...opts, servername: 'a.test', resume: a1.session });
    assert.deepEqual([a2.reused, a2.text], [true, 'a r'], version);
    // The session id context covers the certificates (nginx's ngx_ssl_session_id_context).
    const other = await tlsResumeGet(b!.port, '/', { ...opts, host: '127.0.0.2', servername: 'b.test', resume: a1.session });
    assert.deepEqual([other.reused, other.text, other.peerCN], [false, 'b .', 'b.test'], version);
  }
});

test('ssl_session_ticket_key: two proxies with one key file (48 or 80 bytes) resume each other\'s tickets; other keys do not', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  for (const size of [48, 80]) {
    const key = dir.write(`ticket-${size}.key`, randomBytes(size));
    const other = dir.write(`other-${size}.key`, randomBytes(size));
    const one = await startTestProxy(conf(sslServer(certs, `ssl_session_ticket_key ${key};`)), { t });
    const two = await startTestProxy(conf(sslServer(certs, `ssl_session_ticket_key ${key}; ssl_session_ticket_key ${other};`)), { t });
    const three = await startTestProxy(conf(sslServer(certs, `ssl_session_ticket_key ${other};`)), { t });
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await tlsResumeGet(one.port, '/', { servername: 'localhost', maxVersion: version, minVersion: version });
      const there = await tlsResumeGet(two.port, '/', { servername: 'localhost', maxVersion: version, minVersion: version, resume: first.session });
      assert.equal(there.reused, true, `${size} bytes, ${version}`);
      const elsewhere = await tlsResumeGet(three.port, '/', { servername: 'localhost', maxVersion: version, minVersion: version, resume: first.session });
      assert.equal(elsewhere.reused, false, `${size} bytes, ${version}`);
    }
  }
});

/** `worker_processes 2` with a shared cache and without (the ticket key): `run` for each, then a stop. */
async function withWorkers(t: TestContext, run: (port: number, name: string, version: Version) => Promise<void>): Promise<void> {
  const certs = await testCerts();
  const dir = tempDir(t);
  const cases = [
    ['cache', 'ssl_session_cache shared:SSL:1m; ssl_session_tickets off;'],
    ['tickets', ''],
  ] as const;
  for (const [name, lines] of cases) {
    const file = dir.write(`${name}.conf`, conf(sslServer(certs, lines), 'worker_processes 2;'));
    const child = new CliProcess(t, ['-c', file], dir.path);
    const port = await child.port();
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) await run(port, name, version);
    await child.stop('SIGTERM');
  }
}

test('worker processes: a shared session cache and the ticket key serve every worker', async (t) => {
  await withWorkers(t, async (port, name, version) => {
    const r = await chain(port, version, 6);
    assert.deepEqual(r.reused, [false, true, true, true, true, true], `${name}, ${version}`);
    // Both workers resume sessions: more resumed connections until each has answered one (the
    // workers accept for themselves, and which one takes a connection is their race).
    const pids = new Set(r.texts.slice(1).map((x) => x.split(' ')[1]));
    const texts = [...r.texts];
    let session = r.session;
    await waitFor(async () => {
      const next = await tlsResumeGet(port, '/', { resume: session, minVersion: version, maxVersion: version, servername: 'localhost' });
      texts.push(next.text);
      assert.equal(next.reused, true, `${name}, ${version}: ${texts.join(' | ')}`);
      session = next.session ?? session;
      pids.add(next.text.split(' ')[1]);
      return pids.size === 2;
    }, { what: `${name}, ${version}: both workers to resume a session` });
  });
});

test('worker processes: a worker started after a session was made resumes it (the primary keeps the shared cache; the ticket key is the primary\'s)', async (t) => {
  await withWorkers(t, async (port, name, version) => {
    const opts = { minVersion: version, maxVersion: version, servername: 'localhost' } as const;
    const pidOf = (r: { text: string }): string => r.text.split(' ')[1]!;
    const first = await tlsResumeGet(port, '/', opts);
    const maker = pidOf(first);
    // The other worker goes; the one started in its place has seen no session stored.
    let other = maker;
    await waitFor(async () => (other = pidOf(await tlsResumeGet(port, '/', opts))) !== maker, { what: 'the other worker to answer' });
    process.kill(Number(other), 'SIGKILL');
    const late = await waitFor(async () => {
      const r = await tlsResumeGet(port, '/', { ...opts, resume: first.session });
      return pidOf(r) !== maker && pidOf(r) !== other ? r : null;
    }, { timeoutMs: 20_000, what: 'the new worker to answer' });
    assert.deepEqual([late.reused, late.text.split(' ')[0]], [true, 'r'], `${name}, ${version}: ${late.text}`);
  });
});

test('-t: ssl_session_cache and ssl_session_ticket_key values nginx refuses', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const short = dir.write('short.key', randomBytes(32));
  const r = await loadConfig({
    prefix: dir.path,
    text: conf([
      '  ssl_session_cache shared:SSL:10m;',
      '  server { listen 127.0.0.1:0 ssl;',
      `    ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`,
      '    ssl_session_cache shared:SSL:20m;',
      '  }',
      '  server { listen 127.0.0.2:0; ssl_session_cache shared:X:10k; }',
      '  server { listen 127.0.0.3:0; ssl_session_cache builtin:many; }',
      '  server { listen 127.0.0.4:0; ssl_session_cache shared::1m; }',
      '  server { listen 127.0.0.5:0; ssl_session_cache lots; }',
      `  server { listen 127.0.0.6:0 ssl; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`,
      `    ssl_session_ticket_key ${short}; }`,
      `  server { listen 127.0.0.7:0 ssl; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};`,
      '    ssl_session_ticket_key missing.key; }',
    ].join('\n')),
  });
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    '[emerg] the size 20971520 of shared memory zone "SSL" conflicts with already declared size 10485760 in <inline>:6',
    '[emerg] session cache "shared:X:10k" is too small in <inline>:8',
    '[emerg] invalid session cache "builtin:many" in <inline>:9',
    '[emerg] invalid session cache "shared::1m" in <inline>:10',
    '[emerg] invalid session cache "lots" in <inline>:11',
    `[emerg] "${short}" must be 48 or 80 bytes in <inline>:13`,
    `[emerg] open() "${dir.join('missing.key')}" failed (2: No such file or directory) in <inline>:15`,
  ]);
});
