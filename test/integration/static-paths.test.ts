/**
 * Which file a URI names, tested rather than assumed: `alias` (prefix and regex locations with
 * captures, nginx's "off-by-slash" reproduced), path traversal (`..`, `%2e%2e`, encoded slashes,
 * NUL), symbolic links out of the root with `disable_symlinks` (off, on, if_not_owner, from=),
 * permission denied (a child running as another user, since root reads everything), and the
 * variables $document_root, $realpath_root, $request_filename and $body_bytes_sent.
 */
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, mkdirSync, symlinkSync } from 'node:fs';
import { test } from 'node:test';
import { CliProcess } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { accessLines, get } from './static-support.js';

test('alias: the location prefix is replaced; a regex location\'s alias takes captures; nested locations inherit it', async (t) => {
  const dir = tempDir(t);
  dir.write('data/images/logo.png', 'png');
  dir.write('data/users/ann/notes.txt', 'ann notes');
  dir.write('data/images/deep/x.txt', 'deep');
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /img/ { alias data/images/; location /img/deep/ { } }
      location ~ ^/u/(\\w+)/(.+)$ { alias data/users/$1/$2; }
      location = /logo { alias data/images/logo.png; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/img/logo.png')).body.toString(), 'png');
  assert.equal((await get(proxy.port, '/img/deep/x.txt')).body.toString(), 'deep');
  assert.equal((await get(proxy.port, '/u/ann/notes.txt')).body.toString(), 'ann notes');
  assert.equal((await get(proxy.port, '/logo')).body.toString(), 'png');
  assert.equal((await get(proxy.port, '/u/bob/notes.txt')).status, 404);
});

test('alias without the trailing slash of its location: nginx joins the strings, so "/img../x" climbs a directory ("off-by-slash"), reproduced', async (t) => {
  const dir = tempDir(t);
  dir.write('site/images/a.png', 'a');
  dir.write('site/secret.txt', 'outside the alias');
  dir.write('site/imagesb.png', 'joined');
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /img { alias site/images/; }
      location /pic/ { alias site/images; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/img/a.png')).body.toString(), 'a');
  // "/img../secret.txt" is a normal URI ("img.." is a name, not ".."); the location "/img"
  // matches, and the file is "site/images/" + "../secret.txt". nginx serves it; so does Sluice.
  const climbed = await get(proxy.port, '/img../secret.txt');
  assert.equal(climbed.status, 200);
  assert.equal(climbed.body.toString(), 'outside the alias');
  // The other half of the mistake: "/pic/b.png" -> "site/images" + "b.png".
  assert.equal((await get(proxy.port, '/pic/b.png')).body.toString(), 'joined');
});

test('path traversal: ".." above the root, %2e%2e, encoded slashes and NUL are 400; ".." inside the root is resolved before the location search', async (t) => {
  const dir = tempDir(t);
  dir.write('secret.txt', 'not under html');
  dir.write('html/pub/a.txt', 'a');
  dir.write('html/b.txt', 'b');
  const proxy = await startTestProxy(conf('server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const status = async (target: string): Promise<number> => {
    const r = await rawRequest(proxy.port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    return r.head?.statusCode ?? 0;
  };
  for (const target of ['/../secret.txt', '/pub/../../secret.txt', '/%2e%2e/secret.txt', '/pub/%2E%2E/%2e%2e/secret.txt', '/pub/..%2f..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/b.txt%00.png']) {
    assert.equal(await status(target), 400, target);
  }
  assert.equal((await get(proxy.port, '/pub/../b.txt')).body.toString(), 'b');
  assert.equal((await get(proxy.port, '/pub%2fa.txt')).body.toString(), 'a', 'an encoded slash is a slash once decoded');
  assert.equal((await get(proxy.port, '/pub/./a.txt')).body.toString(), 'a');
});

test('disable_symlinks: off follows links out of the root; on refuses any link (403); if_not_owner refuses a link owned by another user; from= leaves the root\'s own path unchecked', async (t) => {
  const dir = tempDir(t);
  dir.write('outside/secret.txt', 'secret');
  dir.write('real/html/file.txt', 'real file');
  mkdirSync(dir.join('html'));
  symlinkSync(dir.join('outside/secret.txt'), dir.join('html/link.txt'));
  symlinkSync(dir.join('outside'), dir.join('html/linkdir'));
  symlinkSync(dir.join('outside/secret.txt'), dir.join('html/foreign.txt'));
  // A link owned by someone else than its target's owner (the test runs as root, the link gets nobody).
  if (process.getuid?.() === 0) lchownSync(dir.join('html/foreign.txt'), 65534, 65534);
  // The root itself through a link: "site" -> real/html.
  symlinkSync(dir.join('real/html'), dir.join('site'));
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location /off/ { alias html/; }
      location /on/ { alias html/; disable_symlinks on; }
      location /owner/ { alias html/; disable_symlinks if_not_owner; }
      location /viaroot/ { alias site/; disable_symlinks on; }
      location /from/ { alias site/; disable_symlinks on from=$document_root; }
    }`), { t, prefix: dir.path });
  const p = proxy.port;
  assert.equal((await get(p, '/off/link.txt')).body.toString(), 'secret');
  assert.equal((await get(p, '/off/linkdir/secret.txt')).body.toString(), 'secret');
  assert.equal((await get(p, '/on/link.txt')).status, 403);
  assert.equal((await get(p, '/on/linkdir/secret.txt')).status, 403);
  assert.match(await proxy.waitForErrorLine('Too many levels'), new RegExp(`\\[error\\] .*openat\\(\\) "${dir.path}/html/link.txt" failed \\(40: Too many levels of symbolic links\\)`));
  assert.equal((await get(p, '/owner/link.txt')).body.toString(), 'secret', 'same owner: followed');
  if (process.getuid?.() === 0) assert.equal((await get(p, '/owner/foreign.txt')).status, 403);
  // The root's path holds a link: `on` refuses it, `from=$document_root` checks only below the root.
  assert.equal((await get(p, '/viaroot/file.txt')).status, 403);
  assert.equal((await get(p, '/from/file.txt')).body.toString(), 'real file');
  symlinkSync(dir.join('outside/secret.txt'), dir.join('real/html/escape.txt'));
  assert.equal((await get(p, '/from/escape.txt')).status, 403);
});

test('permission denied: a file or directory the proxy may not read is 403, as nginx says it', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir.path, 0o755);
  dir.write('html/ok.txt', 'readable');
  chmodSync(dir.write('html/locked.txt', 'no'), 0o000);
  dir.write('html/closed/index.html', 'no');
  chmodSync(dir.join('html/closed'), 0o000);
  dir.write('html/unlisted/a.txt', 'a');
  chmodSync(dir.join('html/unlisted'), 0o311);
  // The pid file where nobody may write it (the default, next to the config, is root's).
  dir.write('run/.keep', '');
  chmodSync(dir.join('run'), 0o777);
  const config = dir.write('sluice.conf', conf('server { listen 127.0.0.1:0; location /unlisted/ { autoindex on; } }', `error_log stderr info;\npid ${dir.join('run', 'sluice.pid')};`));
  // Root reads every file; the proxy runs as nobody so that permissions apply (as to nginx's workers).
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;
  const child = new CliProcess(t, ['-c', config], dir.path, {}, user);
  const port = await child.port();
  assert.equal((await get(port, '/ok.txt')).body.toString(), 'readable');
  assert.equal((await get(port, '/locked.txt')).status, 403);
  assert.equal((await get(port, '/closed/')).status, 403);
  assert.equal((await get(port, '/unlisted/')).status, 403);
  await child.output('stderr', /open\(\) ".*\/html\/locked\.txt" failed \(13: Permission denied\)/);
  await child.output('stderr', /".*\/html\/closed\/index\.html" is forbidden \(13: Permission denied\)/);
  await child.output('stderr', /opendir\(\) ".*\/html\/unlisted" failed \(13: Permission denied\)/);
});

test('$document_root, $realpath_root and $request_filename as nginx computes them; $body_bytes_sent counts the file bytes sent', async (t) => {
  const dir = tempDir(t);
  dir.write('real/f.txt', '0123456789');
  symlinkSync(dir.join('real'), dir.join('linked'));
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format files '$status $body_bytes_sent $request_filename|$document_root|$realpath_root';
    server {
      listen 127.0.0.1:0;
      access_log ${log} files;
      root linked;
      location /vars { return 200 "$document_root $realpath_root $request_filename"; }
      location ~ ^/cap/(.*)$ { alias real/$1; }
    }`), { t, prefix: dir.path });
  assert.equal((await get(proxy.port, '/vars')).body.toString(), `${dir.path}/linked ${dir.path}/real ${dir.path}/linked/vars`);
  assert.equal((await get(proxy.port, '/f.txt')).status, 200);
  assert.equal((await get(proxy.port, '/f.txt', { Range: 'bytes=0-3' })).status, 206);
  assert.equal((await get(proxy.port, '/cap/f.txt')).status, 200);
  const lines = await waitFor(() => (accessLines(log).length >= 4 ? accessLines(log) : null), { what: 'four access log lines' });
  assert.equal(lines[1], `200 10 ${dir.path}/linked/f.txt|${dir.path}/linked|${dir.path}/real`);
  assert.equal(lines[2], `206 4 ${dir.path}/linked/f.txt|${dir.path}/linked|${dir.path}/real`);
  assert.equal(lines[3], `200 10 ${dir.path}/real/f.txt|${dir.path}/real/f.txt|${dir.path}/real/f.txt`);
});
