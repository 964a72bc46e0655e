/**
 * fastcgi_pass against Debian's PHP-FPM, Sluice beside nginx on the same config text (the Laravel
 * pattern: try_files to /index.php, fastcgi_split_path_info, fastcgi_index, the fastcgi_params
 * table): a small PHP script answers each request through both, and status, the headers that
 * carry meaning and the body must be the same.
 *
 * Needs php-fpm8.2 (Debian's php-fpm) and nginx: without them the test fails and names the package.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { nginxAndSluice } from '../helpers/nginx.js';
import { unusedPort } from '../helpers/ports.js';
import { trackGroup } from '../helpers/process-groups.js';
import { requireProgram } from '../helpers/programs.js';
import { rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import type { TempDir } from '../helpers/temp.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

const SCRIPT = `<?php
header('Content-Type: text/plain');
echo "method=", $_SERVER['REQUEST_METHOD'], "\\n";
echo "uri=", $_SERVER['REQUEST_URI'], "\\n";
echo "script_name=", $_SERVER['SCRIPT_NAME'], "\\n";
echo "script_filename=", $_SERVER['SCRIPT_FILENAME'], "\\n";
echo "path_info=", $_SERVER['PATH_INFO'] ?? '', "\\n";
echo "query=", $_SERVER['QUERY_STRING'], "\\n";
echo "x_test=", $_SERVER['HTTP_X_TEST'] ?? '', "\\n";
echo "content_type=", $_SERVER['CONTENT_TYPE'] ?? '', "\\n";
echo "content_length=", $_SERVER['CONTENT_LENGTH'] ?? '', "\\n";
echo "body=", file_get_contents('php://input'), "\\n";
echo "post=", json_encode($_POST), "\\n";
echo "get=", json_encode($_GET), "\\n";
`;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** PHP-FPM in the foreground with a config of its own in `dir`, on a loopback port. */
async function startPhpFpm(t: TestContext, dir: TempDir): Promise<number> {
  const fpm = requireProgram('php-fpm8.2', 'php-fpm');
  const port = await unusedPort();
  dir.write('fpm.conf', [
    '[global]',
    `pid = ${dir.join('fpm.pid')}`,
    `error_log = ${dir.join('fpm.log')}`,
    'daemonize = no',
    '[www]',
    `user = ${userInfo().username}`,
    `listen = 127.0.0.1:${port}`,
    'pm = static',
    'pm.max_children = 2',
    '',
  ].join('\n'));
  // -R: a root test run may start it (the workers then run as root too); -n: no php.ini.
  const args = ['-F', '-n', '-y', dir.join('fpm.conf'), ...(process.getuid?.() === 0 ? ['-R'] : [])];
  const child = spawn(fpm, args, { stdio: 'ignore', detached: true });
  trackGroup(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    try {
      // The master and its workers: the whole group.
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch { /* gone already */ }
    await withTimeout(exited, 5000, 'php-fpm to exit');
  });
  await waitFor(() => portOpen(port), { what: `php-fpm listening on ${port} (${dir.join('fpm.log')})` });
  return port;
}

interface Case {
  readonly name: string;
  readonly request: string;
}

const CASES: readonly Case[] = [
  { name: 'a script with a query', request: 'GET /index.php?x=1&y=two HTTP/1.1\r\nHost: localhost\r\nX-Test: hello\r\nConnection: close\r\n\r\n' },
  { name: 'path info', request: 'GET /app.php/extra/path?y=2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'try_files to the front controller', request: 'GET /users/42?tab=posts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'a directory: fastcgi_index', request: 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'a form POST', request: 'POST /index.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\nConnection: close\r\n\r\nname=a&n=12' },
  { name: 'a chunked POST', request: 'POST /index.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' },
  { name: 'a status and a header from PHP', request: 'GET /status.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'a redirect from PHP', request: 'GET /redirect.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'a script PHP-FPM cannot find', request: 'GET /missing.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
  { name: 'HEAD', request: 'HEAD /index.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' },
];

/** The parts of a response both must agree on (the port differs in nothing the script prints). */
async function answer(port: number, request: string): Promise<Record<string, unknown>> {
  const res = await rawRequest(port, request);
  assert.ok(res.head, `an answer to ${JSON.stringify(request.split('\r\n')[0])}`);
  const h = Object.fromEntries(res.head.headers.map(([n, v]) => [n.toLowerCase(), v]));
  return {
    status: res.head.statusCode,
    contentType: h['content-type'],
    xFrom: h['x-from'],
    location: h['location'],
    body: res.body.toString('utf8'),
  };
}

test('PHP-FPM behind nginx and Sluice, one config: the same answers', async (t) => {
  const dir = tempDir(t);
  dir.write('www/index.php', SCRIPT);
  dir.write('www/app.php', SCRIPT);
  dir.write('www/status.php', `<?php http_response_code(201); header('X-From: php'); echo "created\\n";`);
  dir.write('www/redirect.php', `<?php header('Location: /elsewhere'); echo "moved\\n";`);
  // Both read the same params table: Sluice's copy of nginx's fastcgi_params (without its
  // SERVER_SOFTWARE line, whose $sluice_version nginx does not know).
  const params = readFileSync(new URL('../../../conf/fastcgi_params', import.meta.url), 'utf8');
  dir.write('fastcgi_params', params.split('\n').filter((l) => !l.includes('SERVER_SOFTWARE')).join('\n'));
  const fpm = await startPhpFpm(t, dir);
  const { nginx, sluice } = await nginxAndSluice(t, (port) => `
    server {
      listen 127.0.0.1:${port};
      server_name localhost;
      root ${dir.join('www')};
      index index.php;
      location / {
        try_files $uri $uri/ /index.php?$query_string;
      }
      location ~ \\.php(/|$) {
        fastcgi_split_path_info ^(.+\\.php)(/.+)$;
        fastcgi_pass 127.0.0.1:${fpm};
        fastcgi_index index.php;
        include ${dir.join('fastcgi_params')};
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param PATH_INFO $fastcgi_path_info;
      }
    }
  `);
  for (const c of CASES) {
    const fromNginx = await answer(nginx, c.request);
    const fromSluice = await answer(sluice, c.request);
    assert.deepEqual(fromSluice, fromNginx, c.name);
  }
  // The script really ran (not two identical error pages).
  const ran = await answer(sluice, CASES[1]!.request);
  assert.match(String(ran.body), /path_info=\/extra\/path/);
});
