/**
 * `map` and `$variables` end to end: values seen by an echo backend (proxy_set_header), in local
 * answers (`return`, `add_header`) and, for `volatile`, in the access log.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend } from '../helpers/backends.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, waitFor } from '../helpers/wait.js';

test('variables in proxy_set_header reach the backend with nginx values', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'vars' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name vars.test www.vars.test;
        location /echo/ {
          proxy_pass http://${backend.addr};
          proxy_set_header X-Host $host;
          proxy_set_header X-Http-Custom $http_x_custom;
          proxy_set_header X-Arg-Room $arg_room;
          proxy_set_header X-Cookie-Sid $cookie_sid;
          proxy_set_header X-Remote-Addr $remote_addr;
          proxy_set_header X-Server-Port $server_port;
          proxy_set_header X-Scheme $scheme;
          proxy_set_header X-Request-Uri $request_uri;
          proxy_set_header X-Uri $uri;
          proxy_set_header X-Args $args;
          proxy_set_header X-Proxy-Host $proxy_host;
          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
          proxy_set_header X-Request-Method $request_method;
          proxy_set_header X-Server-Name $server_name;
          proxy_set_header X-Absent $http_x_not_sent;
          proxy_set_header X-Mixed "$request_method:$host:$arg_missing:";
        }
      }
    }`, { t });
  const target = '/echo/a%20b/../c?room=lobby&Room=hall&empty=';
  const res = await sendRequest(proxy.port, target, [
    'Host: WWW.Vars.Test:8080',
    'X-Custom: hello world',
    'Cookie: a=1; sid=abc123; c=3',
    'X-Forwarded-For: 10.0.0.1',
  ], { method: 'DELETE' });
  assert.equal(res.status, 200);
  const report = JSON.parse(res.body) as EchoHttpReport;
  assert.equal(report.method, 'DELETE');
  // proxy_pass without a URI sends the target exactly as the client did.
  assert.equal(report.url, target);
  const h = report.headers;
  assert.equal(h['host'], backend.addr, 'nginx default: Host $proxy_host');
  assert.equal(h['connection'], 'close', 'nginx default: Connection close');
  assert.equal(h['x-host'], 'www.vars.test');
  assert.equal(h['x-http-custom'], 'hello world');
  assert.equal(h['x-arg-room'], 'lobby', '$arg_ takes the first match, names compared case-insensitively');
  assert.equal(h['x-cookie-sid'], 'abc123');
  assert.equal(h['x-remote-addr'], '127.0.0.1');
  assert.equal(h['x-server-port'], String(proxy.port));
  assert.equal(h['x-scheme'], 'http');
  assert.equal(h['x-request-uri'], target);
  assert.equal(h['x-uri'], '/echo/c');
  assert.equal(h['x-args'], 'room=lobby&Room=hall&empty=');
  assert.equal(h['x-proxy-host'], backend.addr);
  assert.equal(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  assert.equal(h['x-request-method'], 'DELETE');
  assert.equal(h['x-server-name'], 'vars.test');
  assert.equal(h['x-absent'], undefined, 'a header whose value is empty is not sent');
  assert.equal(h['x-mixed'], 'DELETE:www.vars.test::');
  // The client's own Cookie and X-Custom still go through; X-Forwarded-For is replaced.
  assert.equal(h['cookie'], 'a=1; sid=abc123; c=3');
  assert.equal(h['x-custom'], 'hello world');
  assert.deepEqual(report.rawHeaders.filter((_, i) => i % 2 === 0 && report.rawHeaders[i]!.toLowerCase() === 'x-forwarded-for'), ['X-Forwarded-For']);
});

test('variables without a query, without X-Forwarded-For, and with a Host-less HTTP/1.0 request', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'bare' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name bare.test;
        location / {
          proxy_pass http://${backend.addr};
          proxy_set_header X-Host $host;
          proxy_set_header X-Args "[$args]";
          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
      }
    }`, { t });
  const res = await rawRequest(proxy.port, 'GET /plain HTTP/1.0\r\n\r\n');
  assert.equal(res.head?.statusCode, 200);
  const report = JSON.parse(res.body.toString()) as EchoHttpReport;
  assert.equal(report.url, '/plain');
  // Without Host, $host is the server's name (nginx: server_name).
  assert.equal(report.headers['x-host'], 'bare.test');
  assert.equal(report.headers['x-args'], '[]');
  assert.equal(report.headers['x-forwarded-for'], '127.0.0.1');
});

test('variables in return and add_header', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name local.test;
        location / {
          add_header X-Uri $uri;
          add_header X-Remote $remote_addr;
          add_header X-Cookie $cookie_theme;
          add_header X-Empty $http_x_missing;
          return 200 "$request_method $scheme://$host:$server_port$request_uri uri=$uri args=$args a=$arg_a h=$http_x_h sn=$server_name";
        }
      }
    }`, { t });
  const res = await sendRequest(proxy.port, '/p/./q%21?a=1&b=2', ['Host: Local.Test', 'X-H: v', 'Cookie: theme=dark']);
  assert.equal(res.status, 200);
  assert.equal(res.body, `GET http://local.test:${proxy.port}/p/./q%21?a=1&b=2 uri=/p/q! args=a=1&b=2 a=1 h=v sn=local.test`);
  assert.equal(headerValue(res.head, 'x-uri'), '/p/q!');
  assert.equal(headerValue(res.head, 'x-remote'), '127.0.0.1');
  assert.equal(headerValue(res.head, 'x-cookie'), 'dark');
  assert.equal(headerValue(res.head, 'x-empty'), undefined);
});

test('$server_name is the first name, a leading dot dropped (nginx merge_srv_conf); "" without server_name', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      server { listen 127.0.0.1:0; server_name .Dot.Test www.dot.test; return 200 "[$server_name]"; }
      server { listen 127.0.0.1:0; server_name *.Wild.Test; return 200 "[$server_name]"; }
      server { listen 127.0.0.1:0; return 200 "[$server_name]"; }
    }`, { t });
  assert.equal((await sendRequest(proxy.port, '/', ['Host: a.dot.test'])).body, '[dot.test]');
  assert.equal((await sendRequest(proxy.port, '/', ['Host: a.wild.test'])).body, '[*.wild.test]');
  assert.equal((await sendRequest(proxy.port, '/', ['Host: unnamed.test'])).body, '[dot.test]');
  const bare = await rawRequest(proxy.port, 'GET / HTTP/1.0\r\n\r\n');
  assert.equal(bare.body.toString(), '[]');
});

test('a second map of the same variable takes it over, as nginx (site files that each repeat the $connection_upgrade map)', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      map $http_a $v { default one; }
      map $http_b $v { default two; b two-b; }
      server { listen 127.0.0.1:0; return 200 "[$v]"; }
    }`, { t });
  assert.equal((await sendRequest(proxy.port, '/', ['Host: h'])).body, '[two]');
  assert.equal((await sendRequest(proxy.port, '/', ['Host: h', 'B: b'])).body, '[two-b]');
  assert.equal((await sendRequest(proxy.port, '/', ['Host: h', 'A: x'])).body, '[two]', 'the first map is gone');
});

test('$status in add_header is the status being sent', async (t) => {
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(201, { 'Content-Length': '2' });
    res.end('ok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        add_header X-Status $status;
        location /local { return 200 "local"; }
        location /proxied { proxy_pass http://${backend.addr}; }
      }
    }`, { t });
  const local = await sendRequest(proxy.port, '/local', ['Host: s.test']);
  assert.equal(local.status, 200);
  assert.equal(headerValue(local.head, 'x-status'), '200');
  const proxied = await sendRequest(proxy.port, '/proxied', ['Host: s.test']);
  assert.equal(proxied.status, 201);
  assert.equal(headerValue(proxied.head, 'x-status'), '201');
});

const CLASSIC_MAP = `
  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }`;

test('the classic $connection_upgrade map: close for HTTP, upgrade for a WebSocket', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'classic' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      ${CLASSIC_MAP}
      server {
        listen 127.0.0.1:0;
        location = /show { return 200 "[$connection_upgrade]"; }
        location / {
          proxy_pass http://${backend.addr};
          proxy_http_version 1.1;
          proxy_set_header Upgrade $http_upgrade;
          proxy_set_header Connection $connection_upgrade;
          proxy_set_header X-Map $connection_upgrade;
        }
      }
    }`, { t });
  assert.equal((await sendRequest(proxy.port, '/show', ['Host: m.test'])).body, '[close]');
  // An Upgrade header without a Connection: upgrade token is an ordinary request; the map still sees it.
  assert.equal((await sendRequest(proxy.port, '/show', ['Host: m.test', 'Upgrade: something'])).body, '[upgrade]');

  const plain = await sendRequest(proxy.port, '/http', ['Host: m.test']);
  assert.equal(plain.status, 200);
  const report = JSON.parse(plain.body) as EchoHttpReport;
  assert.equal(report.headers['connection'], 'close');
  assert.equal(report.headers['upgrade'], undefined);
  assert.equal(report.headers['x-map'], 'close');

  const ws = new WebSocket(proxy.wsUrl('/whoami'));
  ws.on('error', () => undefined);
  t.after(() => ws.terminate());
  const greeted = once(ws, 'message');
  const [hello] = await greeted;
  assert.deepEqual(JSON.parse(String(hello)), { id: 'classic' });
  ws.send('ping through the map');
  const [echo] = await once(ws, 'message');
  assert.equal(String(echo), 'ping through the map');
  const upgrade = backend.requests.find((r) => r.upgrade);
  assert.ok(upgrade, 'the backend saw the upgrade');
  assert.equal(upgrade.url, '/whoami');
  assert.equal(upgrade.headers['upgrade'], 'websocket');
  assert.equal(upgrade.headers['connection'], 'upgrade');
  assert.equal(upgrade.headers['x-map'], 'upgrade');
});

test('map: exact keys (case-insensitive), regex keys in order with positional and named captures, default', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      map $uri $section {
        /exact                            exact;
        ~^/api/(?<ver>v[0-9]+)/(.*)$      "api:$ver:$2";
        ~*^/static/(.+)\\.(css|js)$       "static:$1:$2";
        ~^/static/                        "static-other";
        default                           "other:$uri";
      }
      map $arg_k $no_default {
        a          "is-a";
        \\default   "the-word-default";
      }
      server {
        listen 127.0.0.1:0;
        location / { return 200 "$section|$no_default|"; }
      }
    }`, { t });
  const cases: [string, string][] = [
    ['/exact', 'exact||'],
    ['/EXACT', 'exact||'],
    ['/exact/', 'other:/exact/||'],
    ['/api/v2/users/7', 'api:v2:users/7||'],
    ['/api/x/users', 'other:/api/x/users||'],
    ['/Static/app.CSS', 'static:app:CSS||'],
    ['/static/img.png', 'static-other||'],
    ['/default', 'other:/default||'],
    ['/default?k=default', 'other:/default|the-word-default|'],
    ['/nothing?k=a', 'other:/nothing|is-a|'],
    ['/nothing?k=A', 'other:/nothing|is-a|'],
    ['/nothing?k=b', 'other:/nothing||'],
  ];
  for (const [target, want] of cases) {
    const res = await sendRequest(proxy.port, target, ['Host: m.test']);
    assert.equal(res.status, 200, target);
    assert.equal(res.body, want, target);
  }
});

test('map hostnames: exact, .domain, *.domain (longest first), www.domain.*, trailing dot, default', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      map $http_host $site {
        hostnames;
        default            none;
        .example.org       org-all;
        *.example.com      com-sub;
        *.api.example.com  com-api;
        www.example.*      www-any;
        exact.example.com  com-exact;
        ~^(?<word>[a-z]+)\\.regex\\.test$  "regex-$word";
      }
      server {
        listen 127.0.0.1:0;
        location / { return 200 "$site"; }
      }
    }`, { t });
  const cases: [string, string][] = [
    ['example.org', 'org-all'],
    ['a.b.example.org', 'org-all'],
    ['a.example.com', 'com-sub'],
    ['v1.api.example.com', 'com-api'],
    ['api.example.com', 'com-sub'],
    ['exact.example.com', 'com-exact'],
    ['EXACT.Example.COM.', 'com-exact'],
    ['www.example.net', 'www-any'],
    // A leading wildcard beats a trailing one.
    ['www.example.com', 'com-sub'],
    ['example.com', 'none'],
    ['abc.regex.test', 'regex-abc'],
    ['other.test', 'none'],
  ];
  for (const [host, want] of cases) {
    const res = await sendRequest(proxy.port, '/', [`Host: ${host}`]);
    assert.equal(res.status, 200, host);
    assert.equal(res.body, want, host);
  }
});

test('map volatile: a cached map keeps its first value for the request, a volatile one is evaluated each time', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'volatile' });
  t.after(() => backend.close());
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(`
    events {}
    http {
      map $status $cached { default "s$status"; }
      map $status $fresh { volatile; default "s$status"; }
      log_format maps '$cached $fresh $status';
      server {
        listen 127.0.0.1:0;
        location / {
          proxy_pass http://${backend.addr};
          proxy_set_header X-Cached $cached;
          proxy_set_header X-Fresh $fresh;
          access_log ${log} maps;
        }
      }
    }`, { t });
  const res = await sendRequest(proxy.port, '/v', ['Host: v.test']);
  assert.equal(res.status, 200);
  const report = JSON.parse(res.body) as EchoHttpReport;
  // Before the response $status is "000" (nginx).
  assert.equal(report.headers['x-cached'], 's000');
  assert.equal(report.headers['x-fresh'], 's000');
  const text = await waitFor(() => {
    const content = readFileSync(log, 'utf8');
    return content.endsWith('\n') ? content : null;
  }, { what: 'the access log line' });
  assert.equal(text, 's000 s200 200\n');
});
