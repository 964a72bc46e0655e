// proxy_cookie_domain, proxy_cookie_path and proxy_cookie_flags on the Set-Cookie headers of
// proxied responses, with the expectations of nginx-tests proxy_cookie.t and proxy_cookie_flags.t
// (nginx 1.19.3+): literal, variable and regex rules, first match wins, off, inheritance, and every
// front end (HTTP/1.1, HTTP/2, a WebSocket 101 and a refused upgrade).
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { startHttpBackend, type HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValues, rawRequest, wsHandshakeRequest } from '../helpers/raw-client.js';

/** Each `c` query parameter of the request, as one Set-Cookie line. */
function cookiesOf(url: string | undefined): string[] {
  return new URL(url ?? '/', 'http://x').searchParams.getAll('c');
}

function rawHead(status: string, extra: readonly string[], cookies: readonly string[]): string {
  return [`HTTP/1.1 ${status}`, ...extra, ...cookies.map((c) => `Set-Cookie: ${c}`), '', ''].join('\r\n');
}

/** `/deny...` upgrades get a 403 with the cookies, the others a 101 with them (then the socket is closed). */
function upgradeWithCookies(req: IncomingMessage, socket: Duplex): void {
  const cookies = cookiesOf(req.url);
  if (req.url?.startsWith('/deny') === true) {
    socket.end(rawHead('403 Forbidden', ['Content-Length: 0', 'Connection: close'], cookies));
    return;
  }
  const accept = acceptKey(String(req.headers['sec-websocket-key']));
  socket.write(rawHead('101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`], cookies));
}

async function cookieBackend(t: { after(fn: () => unknown): void }): Promise<HttpBackend> {
  const backend = await startHttpBackend((req, res) => {
    // Raw header lines, so that each value reaches the proxy exactly as written.
    res.writeHead(200, cookiesOf(req.url).flatMap((c) => ['Set-Cookie', c]));
    res.end('ok');
  }, { onUpgrade: upgradeWithCookies });
  t.after(() => backend.close());
  return backend;
}

const q = (...cookies: string[]): string => `?${cookies.map((c) => `c=${encodeURIComponent(c)}`).join('&')}`;

async function setCookies(port: number, path: string, address = '127.0.0.1'): Promise<string[]> {
  const r = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, { host: address });
  assert.equal(r.head?.statusCode, 200, path);
  return headerValues(r.head!, 'set-cookie');
}

test('proxy_cookie_domain and proxy_cookie_path: nginx-tests proxy_cookie.t', async (t) => {
  const backend = await cookieBackend(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; server_name localhost;
      location / {
        proxy_pass http://${backend.addr};
        proxy_cookie_domain www.example.org .example.com;
        proxy_cookie_domain .$server_name.com en.$server_name.org;
        proxy_cookie_domain ~^(.+)\\.com$ $1.org;
        proxy_cookie_path /path/ /new/;
        proxy_cookie_path /$server_name/ /new/$server_name/;
        proxy_cookie_path ~^/regex/(.+)$ /$1;
        proxy_cookie_path ~*^/caseless/(.+)$ /$1;
        location /off/ {
          proxy_pass http://${backend.addr};
          proxy_cookie_domain off;
          proxy_cookie_path off;
        }
      }
    }`), { t });
  const one = async (path: string, cookie: string): Promise<string> => (await setCookies(proxy.port, path + q(cookie)))[0]!;
  const v = 'v=path=domain=';
  assert.equal(await one('/', `${v}; Domain=www.Example.org`), `${v}; Domain=example.com`, 'domain, case-insensitively; the replacement loses its dot');
  assert.equal(await one('/', `${v}; Domain=.LocalHost.com`), `${v}; Domain=.en.localhost.org`, 'variables; the cookie keeps its dot');
  assert.equal(await one('/', `${v}; Domain=www.example.COM`), `${v}; Domain=www.example.org`, 'a domain regex is caseless');
  assert.equal(await one('/', `${v}; Path=/path/test.html`), `${v}; Path=/new/test.html`, 'path prefix');
  assert.equal(await one('/', `${v}; Path=/localhost/test.html`), `${v}; Path=/new/localhost/test.html`, 'path with variables');
  assert.equal(await one('/', `${v}; Path=/regex/test.html`), `${v}; Path=/test.html`, 'path regex');
  assert.equal(await one('/', `${v}; Path=/REGEX/test.html`), `${v}; Path=/REGEX/test.html`, '~ is case-sensitive');
  assert.equal(await one('/', `${v}; Path=/CASEless/test.html`), `${v}; Path=/test.html`, '~* is not');
  assert.equal(await one('/', `${v}; Domain=www.example.org; Path=/path/test.html`), `${v}; Domain=example.com; Path=/new/test.html`);
  assert.equal(await one('/off/', `${v}; Domain=www.example.org; Path=/path/test.html`), `${v}; Domain=www.example.org; Path=/path/test.html`,
    'off in a nested location turns the inherited rules off');
  // Not rewritten: relayed byte for byte (odd spacing kept); rewritten: normalised to "; ".
  assert.equal(await one('/', 'a=1;path=/other;  Domain=x.test'), 'a=1;path=/other;  Domain=x.test');
  assert.equal(await one('/', 'a=1;path=/path/x;  HttpOnly '), 'a=1; path=/new/x; HttpOnly');
  // The domain must equal the pattern, not end with it; the path must start with it.
  assert.equal(await one('/', 'a=1; Domain=xwww.example.org'), 'a=1; Domain=xwww.example.org');
  assert.equal(await one('/', 'a=1; Path=/x/path/'), 'a=1; Path=/x/path/');
  // A cookie without "=" is not touched, nor are attributes without a value.
  assert.equal(await one('/', 'novalue; Path=/path/'), 'novalue; Path=/path/');
  assert.equal(await one('/', 'a=1; Path; Domain'), 'a=1; Path; Domain');
  // Every Set-Cookie of a response.
  assert.deepEqual(await setCookies(proxy.port, `/${q('a=1; Path=/path/a', 'b=2; Domain=www.example.org', 'c=3')}`),
    ['a=1; Path=/new/a', 'b=2; Domain=example.com', 'c=3']);
});

test('proxy_cookie_*: the first matching line wins; a level with lines of its own inherits none; off stops inheritance', async (t) => {
  const backend = await cookieBackend(t);
  const proxy = await startTestProxy(conf(`
    proxy_cookie_path /a/ /first/;
    proxy_cookie_path /a/b/ /never/;
    proxy_cookie_domain internal.test public.test;
    server { listen 127.0.0.1:0;
      proxy_cookie_flags sid secure;
      location / { proxy_pass http://${backend.addr}; }
      location /own/ { proxy_pass http://${backend.addr}; proxy_cookie_path /b/ /own/; }
      location /off/ { proxy_pass http://${backend.addr}; proxy_cookie_flags off; proxy_cookie_domain off; }
    }
    server { listen 127.0.0.2:0; proxy_cookie_path off;
      location / { proxy_pass http://${backend.addr}; }
    }`), { t });
  const [main, second] = proxy.listeners;
  const cookie = 'sid=1; Domain=internal.test; Path=/a/b/c';
  assert.deepEqual(await setCookies(main!.port, `/${q(cookie)}`), ['sid=1; Domain=public.test; Path=/first/b/c; Secure']);
  assert.deepEqual(await setCookies(main!.port, `/own/${q(cookie, 'x=1; Path=/b/x')}`),
    ['sid=1; Domain=public.test; Path=/a/b/c; Secure', 'x=1; Path=/own/x'], 'own proxy_cookie_path lines replace http\'s; the others are still inherited');
  assert.deepEqual(await setCookies(main!.port, `/off/${q(cookie)}`), ['sid=1; Domain=internal.test; Path=/first/b/c']);
  assert.deepEqual(await setCookies(second!.port, `/${q(cookie)}`, '127.0.0.2'), ['sid=1; Domain=public.test; Path=/a/b/c']);
});

test('proxy_cookie_flags: nginx-tests proxy_cookie_flags.t', async (t) => {
  const backend = await cookieBackend(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0;
      location / {
        proxy_pass http://${backend.addr};
        proxy_cookie_flags a secure httponly samesite=none;
        proxy_cookie_flags b secure httponly samesite=lax;
        proxy_cookie_flags c secure httponly samesite=strict;
        proxy_cookie_flags d nosecure nohttponly nosamesite;
        proxy_cookie_flags $arg_complex secure;
        proxy_cookie_flags ~BAR httponly;
        location /off/ { proxy_pass http://${backend.addr}; proxy_cookie_flags off; }
      }
      location /var/ {
        proxy_pass http://${backend.addr};
        proxy_cookie_flags $arg_v $arg_f1 $arg_f2 $arg_f3;
      }
    }`), { t });
  const one = async (path: string, cookie: string, args = ''): Promise<string> => (await setCookies(proxy.port, path + q(cookie) + args))[0]!;
  const base = (name: string, f = ''): string => `${name}=path=domain=; Domain=example.org${f}`;
  assert.equal(await one('/', base('a')), `${base('a')}; Secure; HttpOnly; SameSite=None`);
  assert.equal(await one('/', base('b')), `${base('b')}; Secure; HttpOnly; SameSite=Lax`);
  assert.equal(await one('/', base('c')), `${base('c')}; Secure; HttpOnly; SameSite=Strict`);
  assert.equal(await one('/', base('a', ';Secure;HttpOnly;SameSite=Lax')), `${base('a')}; Secure; HttpOnly; SameSite=None`, 'flags already set are edited in place');
  assert.equal(await one('/', base('b', ';Secure;HttpOnly;SameSite=None')), `${base('b')}; Secure; HttpOnly; SameSite=Lax`);
  assert.equal(await one('/', base('c', ';Secure;HttpOnly;SameSite=None')), `${base('c')}; Secure; HttpOnly; SameSite=Strict`);
  assert.equal(await one('/', base('d', ';secure;httponly;samesite=lax')), base('d'), 'the no... forms remove them');
  assert.equal(await one('/', base('nx', ';samesite=none')), base('nx', ';samesite=none'), 'no line names the cookie: untouched');
  assert.equal(await one('/', base('v'), '&complex=v'), `${base('v')}; Secure`, 'the cookie name from a variable');
  assert.equal(await one('/', base('A')), `${base('A')}; Secure; HttpOnly; SameSite=None`, 'cookie names match case-insensitively');
  assert.equal(await one('/', base('foobarbaz')), `${base('foobarbaz')}; HttpOnly`, 'a name regex is caseless');
  assert.equal(await one('/off/', base('a')), base('a'));
  assert.equal(await one('/var/', base('v'), '&v=v&f1=secure&f2=httponly&f3=samesite=none'), `${base('v')}; Secure; HttpOnly; SameSite=None`);
  assert.equal(await one('/var/', base('v', ';Secure;HttpOnly;SameSite=Lax'), '&v=v&f1=secure&f2=httponly&f3=samesite=none'),
    `${base('v')}; Secure; HttpOnly; SameSite=None`);
  assert.equal(await one('/var/', base('v', ';secure;httponly;samesite=lax'), '&v=v&f1=nosecure&f2=nohttponly&f3=nosamesite'), base('v'));
  assert.equal(await one('/var/', base('v', ';secure'), '&v=v&f1=SECURE&f2=bogus'), `${base('v')}; secure`,
    'flags are caseless; a value naming no flag is skipped (the cookie is still written out normalised)');
  assert.equal(await one('/var/', base('v', ';secure'), '&v=v&f1=bogus'), base('v', ';secure'), 'no known flag: untouched');
});

test('proxy_cookie_*: HTTP/2, a WebSocket 101 and a refused upgrade are rewritten too', async (t) => {
  const certs = await testCerts();
  const backend = await cookieBackend(t);
  const rules = `proxy_cookie_domain backend.test example.test; proxy_cookie_path / /app/; proxy_cookie_flags ~. secure;`;
  const proxy = await startTestProxy(conf(`
    ${rules}
    server { listen 127.0.0.1:0 ssl; http2 on; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass http://${backend.addr}; } }
    server { listen 127.0.0.2:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const [tls, plain] = proxy.listeners;
  const cookie = 's=1; Domain=backend.test; Path=/x';
  const expected = 's=1; Domain=example.test; Path=/app/x; Secure';
  const h2 = await h2Connect(tls!.port, { ca: certs.ca.cert, servername: 'localhost' });
  t.after(() => h2.close());
  const r = await h2Request(h2, { ':path': `/${q(cookie, 't=2; Path=/')}` });
  assert.equal(r.status, 200);
  assert.deepEqual(r.headers['set-cookie'], [expected, 't=2; Path=/app/; Secure']);
  const ws = await rawRequest(plain!.port, wsHandshakeRequest({ path: `/ws${q(cookie)}` }), { until: '\r\n\r\n', host: '127.0.0.2' });
  assert.equal(ws.head?.statusCode, 101, proxy.errorLines.join('\n'));
  assert.deepEqual(headerValues(ws.head!, 'set-cookie'), [expected], 'nginx rewrites the 101\'s Set-Cookie (process_headers runs before the upgrade)');
  const denied = await rawRequest(plain!.port, wsHandshakeRequest({ path: `/deny${q(cookie)}` }), { host: '127.0.0.2' });
  assert.equal(denied.head?.statusCode, 403);
  assert.deepEqual(headerValues(denied.head!, 'set-cookie'), [expected]);
});
