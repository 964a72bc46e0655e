/**
 * Access and error logs written to real files: nginx's combined format, custom formats and their
 * escaping, access_log off / inheritance / if=, $upstream_* across a retry, error_log levels.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `$time_local` ("22/Nov/2026:04:40:00 +0100") as epoch ms. */
function parseTimeLocal(text: string): number {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  assert.ok(m, `a $time_local value: ${text}`);
  const [, d, mon, y, hh, mm, ss, sign, oh, om] = m;
  const utc = Date.UTC(Number(y), MONTHS.indexOf(mon!), Number(d), Number(hh), Number(mm), Number(ss));
  const offset = (Number(oh) * 60 + Number(om)) * 60_000 * (sign === '+' ? 1 : -1);
  return utc - offset;
}

test('access_log FILE writes nginx\'s combined format by default', async (t) => {
  const dir = tempDir(t);
  dir.write('logs/.keep', '');
  const log = dir.join('logs', 'access.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        access_log ${log};
        location = /hello { return 200 "hello"; }
      }
    }`, { t });
  const before = Date.now();
  const ok = await sendRequest(proxy.port, '/hello?x=1', [
    'Host: log.test',
    'Referer: http://ref.test/page',
    'User-Agent: agent/1.0 "quoted"',
    `Authorization: Basic ${Buffer.from('alice:secret').toString('base64')}`,
  ]);
  assert.equal(ok.status, 200);
  const missing = await sendRequest(proxy.port, '/nothing', ['Host: log.test']);
  assert.equal(missing.status, 404);
  const all = await waitForFileLine(log, '/nothing');
  const after = Date.now();
  assert.equal(all.length, 2, all.join('\n'));
  const pattern = /^(.*) \[(.*?)\] (.*)$/;
  const [first, second] = all.map((l) => pattern.exec(l));
  assert.ok(first && second, all.join('\n'));
  assert.equal(first[1], '127.0.0.1 - alice');
  assert.equal(first[3], '"GET /hello?x=1 HTTP/1.1" 200 5 "http://ref.test/page" "agent/1.0 \\x22quoted\\x22"');
  assert.equal(second[1], '127.0.0.1 - -');
  assert.equal(second[3], `"GET /nothing HTTP/1.1" 404 ${missing.bytes.length} "-" "-"`);
  assert.equal(headerValue(missing.head, 'content-length'), String(missing.bytes.length));
  for (const m of [first, second]) {
    const at = parseTimeLocal(m[2]!);
    assert.ok(at >= Math.floor(before / 1000) * 1000 && at <= after, `${m[2]!} is the time of the request`);
  }
});

test('log_format escape=json and escape=default, and escape=none', async (t) => {
  const dir = tempDir(t);
  const json = dir.join('json.log');
  const plain = dir.join('default.log');
  const none = dir.join('none.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format js escape=json '{"ua":"$http_user_agent","ref":"$http_referer","uri":"$uri","st":$status,"bytes":$body_bytes_sent}';
      log_format df '"$http_user_agent" ref=$http_referer empty=[$http_x_empty] uri=$uri';
      log_format raw escape=none '"$http_user_agent" ref=$http_referer';
      server {
        listen 127.0.0.1:0;
        access_log ${json} js;
        access_log ${plain} df;
        access_log ${none} raw;
        location / { return 200 "ok"; }
      }
    }`, { t });
  const res = await sendRequest(proxy.port, '/j%20k', ['Host: e.test', 'User-Agent: x"y\\z\tw', 'X-Empty:']);
  assert.equal(res.status, 200);
  const [jsonLine] = await waitForFileLine(json, '"st":200');
  assert.equal(jsonLine, '{"ua":"x\\"y\\\\z\\tw","ref":"","uri":"/j k","st":200,"bytes":2}');
  assert.deepEqual(JSON.parse(jsonLine!), { ua: 'x"y\\z\tw', ref: '', uri: '/j k', st: 200, bytes: 2 });
  const [plainLine] = await waitForFileLine(plain, 'uri=');
  assert.equal(plainLine, '"x\\x22y\\x5Cz\\x09w" ref=- empty=[] uri=/j k');
  const [noneLine] = await waitForFileLine(none, 'ref=');
  assert.equal(noneLine, '"x"y\\z\tw" ref=-');
});

test('access_log: http level inherited by servers, server level by locations; own lists replace; off', async (t) => {
  const dir = tempDir(t);
  const httpLog = dir.join('http.log');
  const serverLog = dir.join('server.log');
  const ownLog = dir.join('own.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format short '$host $request_uri $status';
      access_log ${httpLog} short;
      server {
        listen 127.0.0.1:0;
        server_name a.test;
        location / { return 200 "a"; }
      }
      server {
        listen 127.0.0.1:0;
        server_name b.test;
        access_log ${serverLog} short;
        location /inherit { return 200 "inherit"; }
        location /own { access_log ${ownLog} short; return 200 "own"; }
        location /off { access_log off; return 200 "off"; }
        location /nested/ {
          location /nested/deep/ { return 200 "deep"; }
          location /nested/quiet/ { access_log off; return 200 "quiet"; }
          return 200 "nested";
        }
      }
    }`, { t });
  for (const target of ['/off', '/nested/quiet/x', '/inherit', '/own', '/nested/deep/x']) {
    const res = await sendRequest(proxy.port, target, ['Host: b.test']);
    assert.equal(res.status, 200, target);
  }
  const a = await sendRequest(proxy.port, '/from-a', ['Host: a.test']);
  assert.equal(a.body, 'a');
  assert.deepEqual(await waitForFileLine(httpLog, '/from-a'), ['a.test /from-a 200']);
  assert.deepEqual(await waitForFileLine(serverLog, '/nested/deep/x'), ['b.test /inherit 200', 'b.test /nested/deep/x 200']);
  assert.deepEqual(await waitForFileLine(ownLog, '/own'), ['b.test /own 200']);
});

test('access_log if=: skipped when the condition is empty or "0"', async (t) => {
  const dir = tempDir(t);
  const errors = dir.join('errors.log');
  const flagged = dir.join('flagged.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      map $status $loggable {
        ~^[23]  0;
        default 1;
      }
      log_format short '$request_uri $status';
      server {
        listen 127.0.0.1:0;
        access_log ${errors} short if=$loggable;
        access_log ${flagged} short if=$arg_log;
        location /ok { return 200 "ok"; }
        location /moved { return 302 /ok; }
      }
    }`, { t });
  const statuses: [string, number][] = [
    ['/ok', 200], ['/moved', 302], ['/ok?log=0', 200], ['/ok?log=', 200], ['/missing', 404], ['/ok?log=yes', 200],
  ];
  for (const [target, status] of statuses) assert.equal((await sendRequest(proxy.port, target, ['Host: if.test'])).status, status, target);
  assert.deepEqual(await waitForFileLine(flagged, '/ok?log=yes'), ['/ok?log=yes 200']);
  assert.deepEqual(await waitForFileLine(errors, '/missing'), ['/missing 404']);
});

test('$upstream_addr and $upstream_status list every attempt of a retry', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('upstream.log');
  const dead = await refusedPort();
  const backend = await startHttpBackend(undefined, { id: 'live' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format up '$request_uri|$upstream_addr|$upstream_status|$status';
      upstream pair {
        server 127.0.0.1:${dead};
        server ${backend.addr};
      }
      server {
        listen 127.0.0.1:0;
        access_log ${log} up;
        location / { proxy_pass http://pair; }
        location = /local { return 200 "local"; }
      }
    }`, { t });
  const first = await sendRequest(proxy.port, '/first', ['Host: up.test']);
  assert.equal(first.status, 200);
  assert.equal(headerValue(first.head, 'x-echo-id'), 'live');
  // The dead server failed once (max_fails=1): it is skipped for fail_timeout.
  const second = await sendRequest(proxy.port, '/second', ['Host: up.test']);
  assert.equal(second.status, 200);
  assert.equal((await sendRequest(proxy.port, '/local', ['Host: up.test'])).status, 200);
  assert.deepEqual(await waitForFileLine(log, '/local'), [
    `/first|127.0.0.1:${dead}, ${backend.addr}|502, 200|200`,
    `/second|${backend.addr}|200|200`,
    '/local|-|-|200',
  ]);
});

test('$sent_http_* reads the response headers as sent: relayed, added by add_header, Sluice\'s own, a repeated one joined, a local answer', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('sent.log');
  const backend = await startHttpBackend((_req, res) => {
    res.setHeader('Content-Type', 'text/x-up');
    res.setHeader('X-Multi', ['a', 'b']);
    res.end('up');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format sent '$request_uri|$sent_http_content_type|$sent_http_x_multi|$sent_http_x_added|$sent_http_server|$sent_http_x_none';
      server {
        listen 127.0.0.1:0;
        access_log ${log} sent;
        add_header X-Added yes;
        location / { proxy_pass http://${backend.addr}; }
        location = /local { default_type text/x-local; return 200 "local"; }
      }
    }`, { t });
  assert.equal((await sendRequest(proxy.port, '/up', ['Host: sent.test'])).status, 200);
  assert.equal((await sendRequest(proxy.port, '/local', ['Host: sent.test'])).status, 200);
  assert.deepEqual(await waitForFileLine(log, '/local'), [
    '/up|text/x-up|a, b|yes|sluice|-',
    '/local|text/x-local|-|yes|sluice|-',
  ]);
});

test('error_log FILE LEVEL: a connect failure is logged nginx style; info lines stay out of a warn log', async (t) => {
  const dir = tempDir(t);
  const warnLog = dir.join('warn.log');
  const infoLog = dir.join('info.log');
  const dead = await refusedPort();
  const backend = await startHttpBackend(undefined, { id: 'live' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    error_log ${warnLog} warn;
    error_log ${infoLog} info;
    events {}
    http {
      upstream pair {
        server 127.0.0.1:${dead};
        server ${backend.addr};
      }
      server {
        listen 127.0.0.1:0;
        location / { proxy_pass http://pair; }
      }
    }`, { t });
  // Not HTTP at all: nginx logs "client sent invalid request" at info and answers 400.
  const garbage = await rawRequest(proxy.port, 'NOT HTTP\r\n\r\n', { until: 'close' });
  assert.equal(garbage.head?.statusCode, 400);
  const res = await sendRequest(proxy.port, '/e?q=1', ['Host: e.test']);
  assert.equal(res.status, 200);

  const connectFailure = new RegExp(
    `^\\d{4}/\\d{2}/\\d{2} \\d{2}:\\d{2}:\\d{2} \\[error\\] ${process.pid}#\\d+: \\*\\d+ ` +
    'connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, client: 127\\.0\\.0\\.1, server: , ' +
    `request: "GET /e\\?q=1 HTTP/1\\.1", upstream: "http://127\\.0\\.0\\.1:${dead}/e\\?q=1", host: "e\\.test"$`,
  );
  const warnLines = await waitForFileLine(warnLog, 'connect() failed');
  const infoLines = await waitForFileLine(infoLog, 'connect() failed');
  assert.ok(warnLines.some((l) => connectFailure.test(l)), `the connect failure in nginx's words:\n${warnLines.join('\n')}`);
  assert.ok(infoLines.some((l) => connectFailure.test(l)), infoLines.join('\n'));
  assert.ok(infoLines.some((l) => / \[info\] \d+#\d+: (\*\d+ )?client sent invalid request/.test(l)), `the info log has the bad request:\n${infoLines.join('\n')}`);
  assert.deepEqual(warnLines.filter((l) => /\[(debug|info|notice)\]/.test(l)), [], 'nothing below warn in the warn log');
  // Nothing went to the default (stderr) log once error_log names files.
  assert.deepEqual(proxy.errorLines, []);
});

test('a failed try has a $upstream_response_time; no server left adds the group name to $upstream_addr; $uri is empty for a URI nginx cannot parse', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('tries.log');
  const [dead1, dead2] = [await refusedPort(), await refusedPort()];
  const backend = await startHttpBackend(undefined, { id: 'live' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format up '$request_uri|$upstream_addr|$upstream_status|$upstream_response_time|$status|$uri|';
      upstream backend { server 127.0.0.1:${dead1}; server 127.0.0.1:${dead2}; }
      server {
        listen 127.0.0.1:0;
        access_log ${log} up;
        location / { proxy_pass http://backend; }
      }
    }`, { t });
  assert.equal((await sendRequest(proxy.port, '/first', ['Host: up.test'])).status, 502);
  // Both servers failed once (max_fails=1): none is left.
  assert.equal((await sendRequest(proxy.port, '/second', ['Host: up.test'])).status, 502);
  assert.equal((await rawRequest(proxy.port, 'GET /../bad_uri HTTP/1.0\r\n\r\n', { until: 'close' })).head?.statusCode, 400);
  const lines = await waitForFileLine(log, '|400|');
  const time = String.raw`\d+\.\d{3}`;
  assert.match(lines[0]!, new RegExp(`^/first\\|127\\.0\\.0\\.1:${dead1}, 127\\.0\\.0\\.1:${dead2}\\|502, 502\\|${time}, ${time}\\|502\\|/first\\|$`));
  assert.match(lines[1]!, new RegExp(`^/second\\|backend\\|502\\|${time}\\|502\\|/second\\|$`));
  assert.equal(lines[2], '-|-|-|-|400||', 'nginx sets neither $request_uri nor $uri');
});

test('$pipe, $connections_active/_writing, $binary_remote_addr and $limit_rate on real connections', async (t) => {
  const dir = tempDir(t);
  const log = dir.join('conn.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      log_format conn '$request_uri $pipe $connections_active $connections_writing $binary_remote_addr $limit_rate';
      server {
        listen 127.0.0.1:0;
        access_log ${log} conn;
        limit_rate 1m;
        location / { return 200 "ok\\n"; }
      }
    }`, { t });
  await rawRequest(proxy.port, 'GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { until: 'close' });
  const lines = await waitForFileLine(log, '/two');
  // nginx's access log escapes the address bytes (\\x7F\\x00\\x00\\x01 for 127.0.0.1).
  assert.equal(lines[0], '/one . 1 1 \\x7F\\x00\\x00\\x01 1048576');
  assert.equal(lines[1], '/two p 1 1 \\x7F\\x00\\x00\\x01 1048576', 'the second request came while the first was answered');
});
