/**
 * Routing end to end: server selection by Host (nginx's server_name order), listen addresses,
 * location precedence, regex captures, and URI normalisation before matching.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend } from '../helpers/backends.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';

interface Answer {
  status: number;
  body: string;
  head: NonNullable<Awaited<ReturnType<typeof rawRequest>>['head']>;
}

/** One GET with exactly this target and Host (null: no Host line, HTTP/1.0). */
async function get(port: number, target: string, host: string | null = 'localhost', address = '127.0.0.1'): Promise<Answer> {
  const request = host === null
    ? `GET ${target} HTTP/1.0\r\n\r\n`
    : `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  const res = await rawRequest(port, request, { host: address });
  assert.ok(res.head, `a response to GET ${target} (Host ${String(host)})`);
  return { status: res.head.statusCode, body: res.body.toString('utf8'), head: res.head };
}

const SERVERS = `
  events {}
  http {
    server {
      listen 127.0.0.1:0;
      server_name first.test;
      return 200 "first";
    }
    server {
      listen 127.0.0.1:0;
      server_name example.com www.example.com;
      return 200 "exact";
    }
    server {
      listen 127.0.0.1:0;
      server_name *.example.com;
      return 200 "leading-wildcard";
    }
    server {
      listen 127.0.0.1:0;
      server_name *.api.example.com;
      return 200 "longer-leading-wildcard";
    }
    server {
      listen 127.0.0.1:0;
      server_name www.example.*;
      return 200 "trailing-wildcard";
    }
    server {
      listen 127.0.0.1:0;
      server_name ~^(?<user>[a-z]+)\\.users\\.test$ ~^(\\d+)\\.num\\.test$;
      return 200 "regex user=$user one=$1";
    }
    server {
      listen 127.0.0.1:0;
      server_name ~^www\\.;
      return 200 "regex-www";
    }
  }`;

test('server_name: exact, then longest leading wildcard, then trailing wildcard, then regex in order', async (t) => {
  const proxy = await startTestProxy(SERVERS, { t });
  const cases: [string, string][] = [
    ['first.test', 'first'],
    ['example.com', 'exact'],
    ['EXAMPLE.COM', 'exact'],
    ['example.com.', 'exact'],
    ['www.example.com', 'exact'],
    ['www.example.com:8080', 'exact'],
    ['a.example.com', 'leading-wildcard'],
    ['a.b.example.com', 'leading-wildcard'],
    ['api.example.com', 'leading-wildcard'],
    ['v1.api.example.com', 'longer-leading-wildcard'],
    ['www.example.org', 'trailing-wildcard'],
    ['www.example.co.uk', 'trailing-wildcard'],
    ['ann.users.test', 'regex user=ann one=ann'],
    ['42.num.test', 'regex user= one=42'],
    ['www.other.test', 'regex-www'],
  ];
  for (const [host, want] of cases) {
    const res = await get(proxy.port, '/', host);
    assert.equal(res.status, 200, host);
    assert.equal(res.body, want, host);
  }
});

test('server_name: no match goes to the first server when none is default_server', async (t) => {
  const proxy = await startTestProxy(SERVERS, { t });
  assert.equal((await get(proxy.port, '/', 'unknown.test')).body, 'first');
  assert.equal((await get(proxy.port, '/', 'example.net')).body, 'first');
  // No Host at all (HTTP/1.0): the server named "" if any, else the default: here the first.
  assert.equal((await get(proxy.port, '/', null)).body, 'first');
});

test('server_name: default_server takes what nothing else matches; "_" is just a name that never matches', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name _;
        return 200 "underscore";
      }
      server {
        listen 127.0.0.1:0;
        server_name named.test;
        return 200 "named";
      }
      server {
        listen 127.0.0.1:0 default_server;
        server_name fallback.test;
        return 200 "default";
      }
      server {
        listen 127.0.0.1:0;
        return 200 "no-name";
      }
    }`, { t });
  assert.equal((await get(proxy.port, '/', 'named.test')).body, 'named');
  assert.equal((await get(proxy.port, '/', 'fallback.test')).body, 'default');
  assert.equal((await get(proxy.port, '/', 'other.test')).body, 'default');
  assert.equal((await get(proxy.port, '/', '127.0.0.1')).body, 'default');
  // A server without server_name is named "": it takes requests without a Host header.
  assert.equal((await get(proxy.port, '/', null)).body, 'no-name');
});

test('server_name regex captures are usable in proxy_set_header; $host and $server_name reach the backend', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'tenants' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name ~^(?<tenant>[a-z0-9-]+)\\.(?<zone>eu|us)\\.example\\.com$;
        location / {
          proxy_pass http://${backend.addr};
          proxy_set_header X-Tenant $tenant;
          proxy_set_header X-Zone $zone;
          proxy_set_header X-Positional "$1/$2";
          proxy_set_header X-Host $host;
          proxy_set_header X-Server-Name $server_name;
        }
      }
      server {
        listen 127.0.0.1:0 default_server;
        return 404;
      }
    }`, { t });
  const res = await get(proxy.port, '/orders?x=1', 'Acme-1.EU.example.com');
  assert.equal(res.status, 200);
  const report = JSON.parse(res.body) as EchoHttpReport;
  assert.equal(report.url, '/orders?x=1');
  assert.equal(report.headers['x-tenant'], 'acme-1');
  assert.equal(report.headers['x-zone'], 'eu');
  assert.equal(report.headers['x-positional'], 'acme-1/eu');
  assert.equal(report.headers['x-host'], 'acme-1.eu.example.com');
  assert.equal(report.headers['x-server-name'], '~^(?<tenant>[a-z0-9-]+)\\.(?<zone>eu|us)\\.example\\.com$');
  assert.equal((await get(proxy.port, '/', 'acme.asia.example.com')).status, 404);
  assert.equal(backend.requests.length, 1);
});

test('Host: an absolute-form target wins over the Host header; an invalid Host is answered 400', async (t) => {
  const proxy = await startTestProxy(SERVERS, { t });
  const absolute = await rawRequest(proxy.port, 'GET http://EXAMPLE.com:9/x?y HTTP/1.1\r\nHost: first.test\r\nConnection: close\r\n\r\n');
  assert.equal(absolute.head?.statusCode, 200);
  assert.equal(absolute.body.toString(), 'exact');
  const noHost = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\n\r\n', { until: 'close' });
  assert.equal(noHost.head?.statusCode, 400, 'HTTP/1.1 without Host');
  assert.equal(headerValue(noHost.head!, 'server'), 'sluice');
  assert.equal(noHost.closed, true);
  for (const host of ['a..example.com', 'a/b', '', '.', ':80']) {
    const res = await get(proxy.port, '/', host);
    assert.equal(res.status, 400, JSON.stringify(host));
    assert.match(res.body, /<title>400 Bad Request<\/title>/);
  }
});

test('$host and $request_uri of an absolute-form request', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http { server { listen 127.0.0.1:0; location / { return 200 "host=$host request_uri=$request_uri uri=$uri request=$request"; } } }`, { t });
  const res = await rawRequest(proxy.port, 'GET http://Abs.Test:8080/a/../b?c=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
  assert.equal(res.head?.statusCode, 200);
  assert.equal(res.body.toString(), 'host=abs.test request_uri=/a/../b?c=1 uri=/b request=GET http://Abs.Test:8080/a/../b?c=1 HTTP/1.1');
});

test('two listen addresses: each address has its own servers and default', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http {
      server {
        listen 127.0.0.1:0;
        server_name shared.test;
        return 200 "one:shared";
      }
      server {
        listen 127.0.0.1:0;
        server_name only-one.test;
        return 200 "one:only";
      }
      server {
        listen 127.0.0.2:0;
        server_name other.test;
        return 200 "two:other";
      }
      server {
        listen 127.0.0.2:0 default_server;
        server_name shared.test;
        return 200 "two:shared $server_addr";
      }
    }`, { t });
  const one = proxy.listeners.find((l) => l.host === '127.0.0.1');
  const two = proxy.listeners.find((l) => l.host === '127.0.0.2');
  assert.ok(one && two, `two listeners: ${JSON.stringify(proxy.listeners)}`);
  assert.notEqual(one.port, 0);
  assert.notEqual(two.port, 0);
  assert.equal((await get(one.port, '/', 'shared.test', '127.0.0.1')).body, 'one:shared');
  assert.equal((await get(one.port, '/', 'only-one.test', '127.0.0.1')).body, 'one:only');
  // other.test is not served on 127.0.0.1: the first server there is the default.
  assert.equal((await get(one.port, '/', 'other.test', '127.0.0.1')).body, 'one:shared');
  assert.equal((await get(two.port, '/', 'shared.test', '127.0.0.2')).body, 'two:shared 127.0.0.2');
  assert.equal((await get(two.port, '/', 'other.test', '127.0.0.2')).body, 'two:other');
  assert.equal((await get(two.port, '/', 'only-one.test', '127.0.0.2')).body, 'two:shared 127.0.0.2');
});

const LOCATIONS = `
  events {}
  http {
    server {
      listen 127.0.0.1:0;
      location = / { return 200 "exact-root"; }
      location / { return 200 "root"; }
      location = /exact { return 200 "exact"; }
      location /exact { return 200 "prefix-exact"; }
      location /documents/ { return 200 "documents"; }
      location /documents/deep/ { return 200 "documents-deep"; }
      location /logo.gif { return 200 "logo-prefix"; }
      location ^~ /images/ { return 200 "images"; }
      location ~* \\.(gif|jpg|jpeg)$ { return 200 "regex-image"; }
      location ~ ^/documents/.*\\.txt$ { return 200 "regex-txt-first"; }
      location ~ \\.txt$ { return 200 "regex-txt-second"; }
      location /app/ {
        location ~ \\.php$ { return 200 "app-php"; }
        location /app/static/ { return 200 "app-static"; }
        location ^~ /app/raw/ { return 200 "app-raw"; }
        return 200 "app";
      }
      location ~ ^/users/(\\d+)/(?<tab>[a-z]+)$ {
        add_header X-User $1;
        add_header X-Tab $tab;
        return 200 "user $1 tab $tab uri $uri";
      }
    }
  }`;

test('location precedence: =, longest prefix, ^~, regexes in file order, nested locations', async (t) => {
  const proxy = await startTestProxy(LOCATIONS, { t });
  const cases: [string, string][] = [
    ['/', 'exact-root'],
    ['/index.html', 'root'],
    ['/exact', 'exact'],
    ['/exact/', 'prefix-exact'],
    ['/exactly', 'prefix-exact'],
    ['/documents/', 'documents'],
    ['/documents/a.html', 'documents'],
    ['/documents/deep/a.html', 'documents-deep'],
    // A regex beats the longest prefix unless the prefix is ^~.
    ['/documents/a.jpg', 'regex-image'],
    ['/documents/deep/A.JPG', 'regex-image'],
    ['/images/a.gif', 'images'],
    ['/images/', 'images'],
    ['/other/a.gif', 'regex-image'],
    // Regexes in file order: the first that matches wins.
    ['/documents/x.txt', 'regex-txt-first'],
    ['/x.txt', 'regex-txt-second'],
    ['/x.TXT', 'root'],
    // Nested: the inner regex wins over the outer ones; an inner prefix is remembered, but the
    // outer regexes still apply to it.
    ['/app/', 'app'],
    ['/app/x.php', 'app-php'],
    ['/app/static/x.css', 'app-static'],
    ['/app/static/x.jpg', 'regex-image'],
    // A nested ^~ stops the regexes of its own level only (nginx ngx_http_core_find_location).
    ['/app/raw/x.php', 'app-raw'],
    ['/app/raw/x.jpg', 'regex-image'],
    // A URI equal to a prefix location's name is still a prefix match: regexes win over it
    // (nginx 1.22 answers "regex-image" here; only `=` and `^~` stop the regex search).
    ['/logo.gif', 'regex-image'],
    ['/logo.gifx', 'logo-prefix'],
    ['/logo.gif/a.gif', 'regex-image'],
    ['/app/x.gif', 'regex-image'],
  ];
  for (const [target, want] of cases) {
    const res = await get(proxy.port, target);
    assert.equal(res.status, 200, target);
    assert.equal(res.body, want, target);
  }
});

test('no matching location answers 404', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http { server { listen 127.0.0.1:0; location /api/ { return 200 "api"; } location = /x { return 200 "x"; } } }`, { t });
  const res = await get(proxy.port, '/other');
  assert.equal(res.status, 404);
  assert.match(res.body, /<title>404 Not Found<\/title>/);
  assert.equal((await get(proxy.port, '/x/')).status, 404);
  assert.equal((await get(proxy.port, '/api/v1')).body, 'api');
});

test('regex location captures: $1 and named captures in return and add_header', async (t) => {
  const proxy = await startTestProxy(LOCATIONS, { t });
  const res = await get(proxy.port, '/users/42/posts');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'user 42 tab posts uri /users/42/posts');
  assert.equal(headerValue(res.head, 'x-user'), '42');
  assert.equal(headerValue(res.head, 'x-tab'), 'posts');
  assert.equal(headerValue(res.head, 'content-type'), 'text/plain');
  assert.equal(headerValue(res.head, 'content-length'), String(Buffer.byteLength(res.body)));
});

test('URI normalisation happens before matching: dot segments, %-decoding, merged slashes', async (t) => {
  const proxy = await startTestProxy(LOCATIONS, { t });
  const cases: [string, string][] = [
    ['/a/../documents/x', 'documents'],
    ['/documents/./deep/../deep/x', 'documents-deep'],
    ['/documents%2Fdeep%2Fx', 'documents-deep'],
    ['/%64ocuments/', 'documents'],
    ['//documents//deep///x', 'documents-deep'],
    ['/images/../exact', 'exact'],
    ['/users/7/../8/info', 'user 8 tab info uri /users/8/info'],
    ['/app/static/..', 'app'],
  ];
  for (const [target, want] of cases) {
    const res = await get(proxy.port, target);
    assert.equal(res.status, 200, target);
    assert.equal(res.body, want, target);
  }
  // Above the root: nginx answers 400 and closes.
  for (const target of ['/..', '/../x', '/a/../../b', '/%2e%2e/x', '/a/%2E%2E/%2e%2e/b']) {
    const res = await get(proxy.port, target);
    assert.equal(res.status, 400, target);
    assert.match(res.body, /<title>400 Bad Request<\/title>/, target);
    assert.equal(headerValue(res.head, 'connection'), 'close', target);
  }
});

test('$uri is the normalised path, $request_uri the target as sent', async (t) => {
  const proxy = await startTestProxy(`
    events {}
    http { server { listen 127.0.0.1:0; location /p/ { return 200 "uri=$uri request_uri=$request_uri args=$args"; } } }`, { t });
  const res = await get(proxy.port, '/x/..//p/%41b?q=%41&r');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'uri=/p/Ab request_uri=/x/..//p/%41b?q=%41&r args=q=%41&r');
});

test('auto_redirect: GET /ws with `location /ws/ { proxy_pass }` is a 301 to /ws/ with the arguments; `location = /ws` suppresses it', async (t) => {
  const ws = await startHttpBackend(undefined, { id: 'ws' });
  const root = await startHttpBackend(undefined, { id: 'root' });
  t.after(() => Promise.all([ws.close(), root.close()]));
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0;
    server_name localhost;
    location / { proxy_pass http://${root.addr}; }
    location /ws/ { proxy_pass http://${ws.addr}; }
    location /app/ { proxy_pass http://${ws.addr}; }
    location = /app { return 200 "exact\\n"; }
    location /files/ { return 200 "files\\n"; }
  }
}`, { t });
  const a = await get(proxy.port, '/ws');
  assert.equal(a.status, 301);
  assert.equal(headerValue(a.head, 'location'), `http://localhost:${proxy.port}/ws/`);
  assert.match(a.body, /<title>301 Moved Permanently<\/title>/);
  const args = await get(proxy.port, '/ws?a=1&b');
  assert.equal(headerValue(args.head, 'location'), `http://localhost:${proxy.port}/ws/?a=1&b`);
  assert.equal((await get(proxy.port, '/app')).body, 'exact\n');
  assert.equal((await get(proxy.port, '/files')).status, 200, 'no proxy_pass: no redirect (location / serves it)');
  assert.equal(ws.requests.length, 0);
  assert.deepEqual(root.requests.map((r) => r.url), ['/files']);
});
