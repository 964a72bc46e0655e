// Where logs go, as nginx sends them: error_log and access_log to syslog (RFC 3164 over UDP, the
// exact datagrams checked against nginx 1.22.1), access_log with buffer=, flush= and gzip,
// variables in the access_log path with and without open_log_file_cache, and the `-t` messages.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { conf } from '../helpers/config-text.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-client.js';
import type { AfterHook } from '../helpers/temp.js';
import { tempDir } from '../helpers/temp.js';
import { delay, waitFor } from '../helpers/wait.js';

/** A syslog daemon on 127.0.0.1 port 0: every datagram it got, as text. */
async function syslogListener(t: AfterHook): Promise<{ port: number; messages: string[] }> {
  const socket = createSocket('udp4');
  const messages: string[] = [];
  socket.on('message', (m) => messages.push(m.toString('utf8')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => socket.close());
  return { port: (socket.address() as AddressInfo).port, messages };
}

const get = (port: number, path: string, host = 'x'): ReturnType<typeof rawRequest> =>
  rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

const SYSLOG_TIME = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \\d]\\d \\d\\d:\\d\\d:\\d\\d';

test('error_log syslog: nginx\'s datagram, <PRI>TIME HOST TAG: and the whole error line, the level as severity', async (t) => {
  const syslog = await syslogListener(t);
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://127.0.0.1:${dead}; } }`,
    `error_log syslog:server=127.0.0.1:${syslog.port},facility=local0,tag=sluicetest info;`), { t });
  assert.equal((await get(proxy.port, '/x')).head?.statusCode, 502);
  const line = await waitFor(() => syslog.messages.find((m) => m.includes('connect() failed')) ?? null, { what: 'the error over syslog' });
  // local0 (16) * 8 + error (3)
  assert.match(line, new RegExp(`^<131>${SYSLOG_TIME} ${hostname().toLowerCase()} sluicetest: \\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[error\\] ${process.pid}#0: \\*\\d+ connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, client: 127\\.0\\.0\\.1, .*host: "x"$`));
});

test('access_log syslog: the log line at its severity, no newline; nohostname; defaults local7, info, tag "sluice"', async (t) => {
  const syslog = await syslogListener(t);
  const proxy = await startTestProxy(conf(`
    log_format short '$request_method $uri $status';
    server { listen 127.0.0.1:0;
      location /a { access_log syslog:server=127.0.0.1:${syslog.port},severity=notice,nohostname short; return 200 "a"; }
      location /b { access_log syslog:server=127.0.0.1:${syslog.port} short; return 204; } }`), { t });
  await get(proxy.port, '/a');
  await get(proxy.port, '/b');
  await waitFor(() => (syslog.messages.length >= 2 ? true : null), { what: 'two access log datagrams' });
  assert.match(syslog.messages.find((m) => m.includes('/a'))!, new RegExp(`^<189>${SYSLOG_TIME} sluice: GET /a 200$`));
  assert.match(syslog.messages.find((m) => m.includes('/b'))!, new RegExp(`^<190>${SYSLOG_TIME} ${hostname().toLowerCase()} sluice: GET /b 204$`));
});

test('access_log buffer= holds lines until the buffer fills or flush= passes; gzip writes gzip members', async (t) => {
  const dir = tempDir(t);
  const proxy = await startTestProxy(conf(`
    log_format short '$uri';
    server { listen 127.0.0.1:0;
      location /full/ { access_log ${dir.join('full.log')} short buffer=20; return 200; }
      location /timed/ { access_log ${dir.join('timed.log')} short buffer=64k flush=300ms; return 200; }
      location /gz/ { access_log ${dir.join('gz.log')} short gzip=9 flush=200ms; return 200; } }`), { t });
  const read = (name: string): string => (existsSync(dir.join(name)) ? readFileSync(dir.join(name), 'utf8') : '');
  // 20 bytes: "/full/one\n" (10) and "/full/two\n" (10) fit; the third line pushes them out.
  await get(proxy.port, '/full/one');
  await get(proxy.port, '/full/two');
  await delay(100);
  assert.equal(read('full.log'), '');
  await get(proxy.port, '/full/three');
  await waitFor(() => (read('full.log') === '/full/one\n/full/two\n' ? true : null), { what: 'the full buffer written' });

  await get(proxy.port, '/timed/x');
  assert.equal(read('timed.log'), '');
  await waitFor(() => (read('timed.log') === '/timed/x\n' ? true : null), { what: 'the flush after 300ms' });

  await get(proxy.port, '/gz/1');
  await get(proxy.port, '/gz/2');
  await waitFor(() => (existsSync(dir.join('gz.log')) && readFileSync(dir.join('gz.log')).length > 0 ? true : null), { what: 'the gzip member' });
  await get(proxy.port, '/gz/3');
  await proxy.stop();
  // Stopping flushes what is left: two members, one text.
  assert.equal(gunzipSync(readFileSync(dir.join('gz.log'))).toString(), '/gz/1\n/gz/2\n/gz/3\n');
  assert.equal(read('full.log'), '/full/one\n/full/two\n/full/three\n');
});

test('variables in the access_log path: one file per value, relative to the prefix; ".." is refused; open_log_file_cache keeps files open until a reopen', async (t) => {
  const dir = tempDir(t);
  const proxy = await startTestProxy(conf(`
    log_format short '$uri';
    server { listen 127.0.0.1:0;
      location /host { access_log logs/$host.log short; return 200; }
      location /arg { access_log logs/$arg_f.log short; return 200; }
      location /cached { open_log_file_cache max=2 inactive=1m; access_log logs/cached-$arg_f.log short; return 200; } }`), { t, prefix: dir.path });
  dir.write('logs/.keep', '');
  await get(proxy.port, '/host', 'a.example');
  await get(proxy.port, '/host', 'b.example');
  // The file appears at open(), its line at the write after it: wait for the lines, not the files.
  const written = (f: string): boolean => existsSync(f) && readFileSync(f, 'utf8').endsWith('\n');
  await waitFor(() => (written(dir.join('logs', 'a.example.log')) && written(dir.join('logs', 'b.example.log')) ? true : null), { what: 'one file per host' });
  assert.equal(readFileSync(dir.join('logs', 'a.example.log'), 'utf8'), '/host\n');
  await get(proxy.port, '/arg?f=../escape');
  await proxy.waitForErrorLine(/\[error\] .*access log file name ".*\/logs\/\.\.\/escape\.log" is refused/);
  assert.equal(existsSync(dir.join('escape.log')), false);
  // A directory that does not exist is not made (nginx opens with O_CREAT only).
  await get(proxy.port, '/arg?f=missing/x');
  await proxy.waitForErrorLine(/\[crit\] .*open\(\) ".*\/logs\/missing\/x\.log" failed \(2: No such file or directory\) while logging request/);

  await get(proxy.port, '/cached?f=one');
  await waitFor(() => (existsSync(dir.join('logs', 'cached-one.log')) ? readFileSync(dir.join('logs', 'cached-one.log'), 'utf8') === '/cached\n' || null : null), { what: 'the cached log' });
  // Moved away (logrotate): the cached descriptor still writes to the moved file until a reopen.
  renameSync(dir.join('logs', 'cached-one.log'), dir.join('logs', 'cached-one.log.1'));
  await get(proxy.port, '/cached?f=one');
  await waitFor(() => (readFileSync(dir.join('logs', 'cached-one.log.1'), 'utf8') === '/cached\n/cached\n' ? true : null), { what: 'the line in the moved file' });
  proxy.handle.reopenLogs();
  await get(proxy.port, '/cached?f=one');
  await waitFor(() => (existsSync(dir.join('logs', 'cached-one.log')) && readFileSync(dir.join('logs', 'cached-one.log'), 'utf8') === '/cached\n' ? true : null), { what: 'a new file after reopen' });
});

test('-t: access_log, open_log_file_cache and syslog parameters nginx refuses', async () => {
  const r = await loadConfig({ text: conf([
    '  access_log logs/a.log combined buffer=lots;',
    '  access_log logs/b.log combined flush=5s;',
    '  access_log logs/c.log combined gzip=10;',
    '  access_log logs/$host.log combined buffer=32k;',
    '  access_log syslog:server=127.0.0.1 combined buffer=32k;',
    '  access_log d.log combined buffer=32k;',
    '  access_log d.log combined buffer=64k;',
    '  access_log syslog:server=unix:/dev/log;',
    '  access_log syslog:facility=local0;',
    '  access_log syslog:server=127.0.0.1,facility=nope;',
    '  access_log syslog:server=127.0.0.1,tag=a-b;',
    '  open_log_file_cache inactive=20s;',
    '  server { listen 127.0.0.1:0; open_log_file_cache max=x; }',
  ].join('\n'), 'error_log syslog:server=127.0.0.1,what=1;') });
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    '[emerg] unknown syslog parameter "what=1" in <inline>:1',
    '[emerg] invalid buffer size "lots" in <inline>:4',
    '[emerg] no buffer is defined for access_log "logs/b.log" in <inline>:5',
    '[emerg] invalid compression level "10" in <inline>:6',
    '[emerg] buffered logs cannot have variables in name in <inline>:7',
    '[emerg] logs to syslog cannot be buffered in <inline>:8',
    '[emerg] access_log "d.log" already defined with conflicting parameters in <inline>:10',
    '[emerg] unix domain sockets are not supported in syslog server "unix:/dev/log" in <inline>:11',
    '[emerg] no syslog server specified in <inline>:12',
    '[emerg] unknown syslog facility "nope" in <inline>:13',
    '[emerg] syslog "tag" only allows alphanumeric characters and underscore in <inline>:14',
    '[emerg] "open_log_file_cache" must have "max" parameter in <inline>:15',
    '[emerg] invalid "open_log_file_cache" parameter "max=x" in <inline>:16',
  ]);
});
