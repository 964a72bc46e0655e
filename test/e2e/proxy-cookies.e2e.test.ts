// nginx (the installed 1.22) and Sluice side by side on proxy_cookie_domain, proxy_cookie_path and
// proxy_cookie_flags: the same upstream Set-Cookie lines, the same requests, the same headers out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValues, rawRequest } from '../helpers/raw-client.js';

/** Set-Cookie lines the backend sends, each odd in its own way. */
const COOKIES = [
  'a=1; Domain=www.Example.org; Path=/path/x',
  'b=2;domain=.LOCALHOST.com;path=/localhost/y;Secure',
  'c=3; Domain=shop.example.COM; Path=/regex/z; HttpOnly; SameSite=Lax',
  'd=4; Path=/CASEless/q; secure; httponly; samesite=strict',
  'e=5;  Path = /path/ ;  Domain =  Www.example.org  ',
  'novalue; Path=/path/',
  'f=6; Path; Domain',
  'G=7; Domain=other.test; Path=/other/; SameSite=None',
  'x=8',
];

test('e2e: proxy_cookie_* rewrite Set-Cookie as nginx does', async (t) => {
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, COOKIES.flatMap((c) => ['Set-Cookie', c]));
    res.end('ok');
  });
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port}; server_name localhost;
      proxy_cookie_domain .www.example.org example.com;
      proxy_cookie_domain $server_name.com .en.$server_name.org;
      proxy_cookie_domain ~^(?<sub>[^.]+)\.example\.com$ $sub.example.net;
      proxy_cookie_path /path/ /new/;
      proxy_cookie_path /$server_name/ /$server_name/v2/;
      proxy_cookie_path ~^/regex/(.+)$ /r/$1;
      proxy_cookie_path ~*^/caseless/(?<rest>.+)$ /c/$rest;
      proxy_cookie_flags a secure httponly samesite=none;
      proxy_cookie_flags b nosecure samesite=lax;
      proxy_cookie_flags ~^[cd]$ nohttponly nosamesite secure;
      proxy_cookie_flags g $arg_f;
      location / { proxy_pass http://${backend.addr}; }
      location /off/ { proxy_pass http://${backend.addr}; proxy_cookie_domain off; proxy_cookie_flags off; }
    }`);
  for (const path of ['/', '/?f=httponly', '/?f=bogus', '/off/']) {
    const request = `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
    const [n, s] = [await rawRequest(ports.nginx, request), await rawRequest(ports.sluice, request)];
    assert.equal(s.head?.statusCode, n.head?.statusCode, path);
    const expected = headerValues(n.head!, 'set-cookie');
    assert.equal(expected.length, COOKIES.length, path);
    if (path === '/') assert.notDeepEqual(expected, COOKIES, 'nginx rewrote some of them');
    assert.deepEqual(headerValues(s.head!, 'set-cookie'), expected, path);
  }
});
