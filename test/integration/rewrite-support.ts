/**
 * The rewrite module's shared table: one `http` block (every directive and condition form) and the
 * requests sent to it with what nginx answers. test/integration/rewrite.test.ts checks Sluice
 * against the expected answers; test/e2e/rewrite.e2e.test.ts sends the same requests to nginx and
 * Sluice and compares them with each other.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import type { TempDir } from '../helpers/temp.js';
import type { Answer } from '../helpers/raw-client.js';
import { headerValue } from '../helpers/raw-client.js';

/** The files the `-f`/`-d`/`-e`/`-x` tests and the `/spa/` fallback look at; returns the root. */
export function makeRewriteSite(dir: TempDir): string {
  const root = dir.join('site');
  const files: Record<string, string> = {
    'files/a.txt': 'a\n',
    'files/d/inner.txt': 'inner\n',
    'exec/run.sh': '#!/bin/sh\n',
    'exec/plain.txt': 'plain\n',
    'spa/index.html': '<p>app</p>\n',
    'spa/real.txt': 'real\n',
  };
  for (const [name, text] of Object.entries(files)) {
    const path = `${root}/${name}`;
    mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    writeFileSync(path, text);
  }
  chmodSync(`${root}/exec/run.sh`, 0o755);
  // nginx started as root runs its workers as nobody: they must reach the files.
  for (const d of [dir.path, root, `${root}/files`, `${root}/files/d`, `${root}/exec`, `${root}/spa`]) chmodSync(d, 0o755);
  return root;
}

/** The `http {}` body: one server on `port` (0 for Sluice) in front of `backend` ("127.0.0.1:PORT"). */
export function rewriteHttp(port: number, backend: string, root: string): string {
  return `
  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    root ${root};

    rewrite ^/srv/(.*)$ /new/$1;
    if ($http_x_block) { return 403; }
    if ($arg_srvset) { set $srv "s-$arg_srvset"; }

    location /srvset { return 200 "srv=$srv"; }
    location /set { set $a "x$arg_v"; set $b "$a-$a"; return 200 "a=$a b=$b"; }
    location /var { if ($arg_on) { return 200 "on"; } return 200 "off"; }
    location /eq {
      if ($request_method = POST) { return 200 "post"; }
      if ($request_method != GET) { return 200 "not-get"; }
      return 200 "get";
    }
    location /re {
      if ($http_x_ver ~ ^v(\\d+)\\.(\\d+)$) { return 200 "major=$1 minor=$2"; }
      if ($http_x_ver ~* "^beta (\\w+)") { return 200 "beta=$1"; }
      if ($http_x_ver !~ ^v) { return 200 "not-v"; }
      return 200 "other";
    }
    location /nre { if ( $http_x_ver !~* ^V ) { return 200 "no-v"; } return 200 "v"; }
    location ~ ^/named/(?<id>\\d+) {
      if ($arg_tag ~ ^(?<tag>[a-z]+)$) { return 200 "id=$id tag=$tag"; }
      return 200 "id=$id";
    }
    location /files/ {
      if (-f $request_filename) { return 200 "file"; }
      if (-d $request_filename) { return 200 "dir"; }
      if (!-e $request_filename) { return 200 "missing"; }
      return 200 "other";
    }
    location /exists/ { if (-e ${root}/files/a.txt) { return 200 "exists"; } return 200 "no"; }
    location /notdir/ { if (!-d $request_filename) { return 200 "not-dir"; } return 200 "dir"; }
    location /notfile/ { if (!-f $request_filename) { return 200 "not-file"; } return 200 "file"; }
    location /exec/ {
      if (-x $request_filename) { return 200 "exec"; }
      if (!-x $request_filename) { return 200 "noexec"; }
    }
    location /old/ { rewrite ^/old/(.*)$ /new/$1 last; }
    location /new/ { return 200 "new:$uri:$args"; }
    location /chain/ { rewrite ^/chain/(.*)$ /new/$1; set $x 1; }
    location /nomatch/ { rewrite ^/other/ /new/x last; return 200 "kept:$uri"; }
    location /r302/ { rewrite ^/r302/(.*)$ /target/$1 redirect; }
    location /r301/ { rewrite ^/r301/(.*)$ /target/$1 permanent; }
    location /ext/ { rewrite ^/ext/(.*)$ https://example.com/$1; }
    location /extq/ { rewrite ^/extq/(.*)$ https://example.com/$1?; }
    location /exta/ { rewrite ^/exta/(.*)$ https://example.com/$1?a=1; }
    location /scheme/ { rewrite ^/scheme/(.*)$ $scheme://example.com/$1 permanent; }
    location /args1 { rewrite ^ /new/a?x=1 last; }
    location /args2 { rewrite ^ /new/b? last; }
    location /args3 { rewrite ^ /new/c?x=1? last; }
    location /setargs { set $args "z=9"; rewrite ^ /new/d last; }
    location /loop { rewrite ^ /loop last; }
    location /api/ { rewrite ^/api/(.*)$ /v2/$1 break; proxy_pass http://${backend}/base/; }
    location /plain/ { proxy_pass http://${backend}/base/; }
    location /brk/ { rewrite ^/brk/(.*)$ /moved/$1; break; proxy_pass http://${backend}; }
    location /stop { set $a 1; break; return 200 "not reached"; }
    location /order { return 200 "first"; return 200 "second"; }
    location /cors/ {
      proxy_pass http://${backend};
      add_header X-Loc loc;
      if ($request_method = OPTIONS) { add_header X-Cors yes; return 204; }
    }
    location /flag/ { proxy_pass http://${backend}; if ($http_x_flag) { add_header X-Flag on; } }
    location /evil/ {
      if ($arg_a) { add_header X-A a; }
      if ($arg_b) { add_header X-B b; }
      return 200 "ok";
    }
    location /spa/ { if (!-f $request_filename) { rewrite ^ /spa/index.html break; } }
    location /hdr/ { set $who "u-$arg_u"; proxy_pass http://${backend}; proxy_set_header X-Who $who; }
    location /int/ { internal; return 200 "internal:$uri"; }
    location /toint { rewrite ^ /int/x last; }
    location /tf/ { try_files $uri @fallback; }
    location @fallback { rewrite ^/tf/(.*)$ /new/fb-$1 last; }
    location /esc/ { rewrite ^/esc/(.*)$ https://example.com/$1 redirect; }
    location /ifpass/ { if ($arg_alt) { proxy_pass http://${backend}; } }
    location /escargs/ { rewrite ^/escargs/(.*)$ /new/x?v=$1 last; }
    location /upg/ { if ($http_upgrade) { return 200 "upgrade=$http_upgrade"; } return 200 "plain"; }
  }
`;
}

export interface RewriteCase {
  readonly target: string;
  readonly method?: string;
  readonly headers?: readonly string[];
  readonly status: number;
  /** The Location header with the origin as `ORIGIN` (each server has its own port), or null for none. */
  readonly location?: string | null;
  /** The body as {@link summary} gives it; absent for error pages (their signature differs). */
  readonly body?: string;
  /** Response headers that must have these values (null: absent). */
  readonly has?: Readonly<Record<string, string | null>>;
}

/** A proxied answer as "echo URL [x-who=...]" (the echo backend's report), any other as its body. */
export function summary(res: Answer): string {
  if (!res.body.startsWith('{')) return res.body;
  const report = JSON.parse(res.body) as EchoHttpReport;
  const who = report.headers['x-who'];
  return `echo ${report.url}${who === undefined ? '' : ` x-who=${String(who)}`}`;
}

/** The Location header with `http://localhost:PORT` written as ORIGIN. */
export function locationOf(res: Answer, port: number): string | null {
  const v = headerValue(res.head, 'location');
  return v === undefined ? null : v.replace(`http://localhost:${port}`, 'ORIGIN');
}

export const REWRITE_CASES: readonly RewriteCase[] = [
  { target: '/set?v=1', status: 200, body: 'a=x1 b=x1-x1' },
  { target: '/srvset?srvset=7', status: 200, body: 'srv=s-7' },
  { target: '/srvset', status: 200, body: 'srv=' },
  { target: '/var?on=1', status: 200, body: 'on' },
  { target: '/var?on=0', status: 200, body: 'off' },
  { target: '/var?on=', status: 200, body: 'off' },
  { target: '/var', status: 200, body: 'off' },
  { target: '/eq', status: 200, body: 'get' },
  { target: '/eq', method: 'POST', status: 200, body: 'post' },
  { target: '/eq', method: 'PUT', status: 200, body: 'not-get' },
  { target: '/re', headers: ['X-Ver: v12.3'], status: 200, body: 'major=12 minor=3' },
  { target: '/re', headers: ['X-Ver: BETA two'], status: 200, body: 'beta=two' },
  { target: '/re', headers: ['X-Ver: w1'], status: 200, body: 'not-v' },
  { target: '/re', headers: ['X-Ver: v1'], status: 200, body: 'other' },
  { target: '/nre', headers: ['X-Ver: v1'], status: 200, body: 'v' },
  { target: '/nre', headers: ['X-Ver: x1'], status: 200, body: 'no-v' },
  { target: '/named/42?tag=abc', status: 200, body: 'id=42 tag=abc' },
  { target: '/named/42?tag=ABC', status: 200, body: 'id=42' },
  { target: '/files/a.txt', status: 200, body: 'file' },
  { target: '/files/d', status: 200, body: 'dir' },
  { target: '/files/nope', status: 200, body: 'missing' },
  { target: '/exists/', status: 200, body: 'exists' },
  { target: '/notdir/x', status: 200, body: 'not-dir' },
  { target: '/notfile/x', status: 200, body: 'not-file' },
  { target: '/exec/run.sh', status: 200, body: 'exec' },
  { target: '/exec/plain.txt', status: 200, body: 'noexec' },
  { target: '/old/x?q=1', status: 200, body: 'new:/new/x:q=1' },
  { target: '/chain/y', status: 200, body: 'new:/new/y:' },
  { target: '/nomatch/z', status: 200, body: 'kept:/nomatch/z' },
  { target: '/srv/s?k=v', status: 200, body: 'new:/new/s:k=v' },
  { target: '/r302/p?q=1', status: 302, location: 'ORIGIN/target/p?q=1' },
  { target: '/r301/p', status: 301, location: 'ORIGIN/target/p' },
  { target: '/ext/p?q=1', status: 302, location: 'https://example.com/p?q=1' },
  { target: '/extq/p?q=1', status: 302, location: 'https://example.com/p' },
  { target: '/exta/p?q=1', status: 302, location: 'https://example.com/p?a=1&q=1' },
  { target: '/scheme/p', status: 301, location: 'http://example.com/p' },
  { target: '/args1?q=2', status: 200, body: 'new:/new/a:x=1&q=2' },
  { target: '/args2?q=2', status: 200, body: 'new:/new/b:' },
  { target: '/args3?q=2', status: 200, body: 'new:/new/c:x=1' },
  { target: '/setargs?q=2', status: 200, body: 'new:/new/d:z=9' },
  { target: '/loop', status: 500 },
  { target: '/api/x?y=1', status: 200, body: 'echo /v2/x?y=1' },
  { target: '/plain/x?y=1', status: 200, body: 'echo /base/x?y=1' },
  { target: '/brk/x', status: 200, body: 'echo /moved/x' },
  { target: '/stop', status: 404 },
  { target: '/order', status: 200, body: 'first' },
  { target: '/cors/a', status: 200, body: 'echo /cors/a', has: { 'x-loc': 'loc', 'x-cors': null } },
  { target: '/cors/a', method: 'OPTIONS', status: 204, body: '', has: { 'x-loc': null, 'x-cors': 'yes' } },
  { target: '/flag/a', status: 200, body: 'echo /flag/a', has: { 'x-flag': null } },
  { target: '/flag/a', headers: ['X-Flag: 1'], status: 200, body: 'echo /flag/a', has: { 'x-flag': 'on' } },
  { target: '/evil/?a=1&b=1', status: 200, body: 'ok', has: { 'x-a': null, 'x-b': 'b' } },
  { target: '/evil/?a=1', status: 200, body: 'ok', has: { 'x-a': 'a', 'x-b': null } },
  { target: '/spa/real.txt', status: 200, body: 'real\n' },
  { target: '/spa/deep/route', status: 200, body: '<p>app</p>\n' },
  { target: '/hdr/?u=ann', status: 200, body: 'echo /hdr/?u=ann x-who=u-ann' },
  { target: '/upg/', headers: ['Upgrade: foo'], status: 200, body: 'upgrade=foo' },
  { target: '/upg/', status: 200, body: 'plain' },
  { target: '/set?v=1', headers: ['X-Block: 1'], status: 403 },
  { target: '/toint', status: 200, body: 'internal:/int/x' },
  { target: '/ifpass/p?alt=1', status: 200, body: 'echo /ifpass/p?alt=1' },
  { target: '/ifpass/p', status: 404 },
  { target: '/int/x', status: 404 },
  { target: '/tf/nothing', status: 200, body: 'new:/new/fb-nothing:' },
  { target: '/esc/a%20b', status: 302, location: 'https://example.com/a%20b' },
  { target: '/esc/a%2fb?c=%20', status: 302, location: 'https://example.com/a/b?c=%20' },
  { target: '/esc/a+b', status: 302, location: 'https://example.com/a+b' },
  { target: '/esc/plain', status: 302, location: 'https://example.com/plain' },
  { target: '/esc/%C3%A9t%C3%A9', status: 302, location: 'https://example.com/%C3%A9t%C3%A9' },
  { target: '/escargs/a%26b', status: 200, body: 'new:/new/x:v=a%26b' },
  { target: '/escargs/a&b', status: 200, body: 'new:/new/x:v=a&b' },
];

/** The request line of a case, for messages. */
export function caseName(c: RewriteCase): string {
  return `${c.method ?? 'GET'} ${c.target}${c.headers === undefined ? '' : ` [${c.headers.join(', ')}]`}`;
}
