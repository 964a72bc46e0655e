/**
 * auth_basic and auth_basic_user_file with nginx's password schemes ({PLAIN}, {SHA}, {SSHA},
 * $apr1$, $1$; the hashes below were made by `openssl passwd`), its 401 with the realm, its log
 * lines, $remote_user, `auth_basic off` below a protected level, and edits to the file applying
 * without a reload.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

const basic = (user: string, password: string): string => `Authorization: Basic ${Buffer.from(`${user}:${password}`, 'latin1').toString('base64')}\r\n`;

test('auth_basic: each password scheme nginx reads, 401 with the realm and nginx\'s lines, $remote_user upstream, off below', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  const salt = Buffer.from('sa1t');
  const ssha = Buffer.concat([createHash('sha1').update('ssha-pw').update(salt).digest(), salt]).toString('base64');
  const users = dir.write('htpasswd', [
    '# comment',
    'plain:{PLAIN}open sesame',
    'sha:{SHA}WO51BSqh38jteqySD2jTmVRjTeI=', // plainsha
    `salted:{SSHA}${ssha}`,
    'apr:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0', // s3cret
    'md5:$1$saltsalt$qSPqBihzO76yNLaN8bPO31', // pa:ss
    'bcrypt:$2y$05$abcdefghijklmnopqrstuu5Ph8GPbdPAfHoU2S9KqlTBc1iPqOVa.',
    '',
  ].join('\n'));
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      auth_basic "Staff \\"only\\"";
      auth_basic_user_file ${users};
      location / { proxy_set_header X-User $remote_user; proxy_pass http://${backend.addr}; }
      location /public { auth_basic off; return 200 "open"; }
    }`), { t });
  const get = (path: string, auth = ''): ReturnType<typeof rawRequest> => rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: a\r\n${auth}\r\n`);

  const none = await get('/');
  assert.equal(none.head?.statusCode, 401);
  assert.equal(headerValue(none.head!, 'www-authenticate'), 'Basic realm="Staff \\"only\\""');
  assert.equal(none.head?.reason, 'Unauthorized');
  assert.match(none.body.toString(), /<title>401 Authorization Required<\/title>/);
  for (const [user, password] of [['plain', 'open sesame'], ['sha', 'plainsha'], ['salted', 'ssha-pw'], ['apr', 's3cret'], ['md5', 'pa:ss']] as const) {
    const ok = await get('/', basic(user, password));
    assert.equal(ok.head?.statusCode, 200, user);
    assert.equal(backend.requests.at(-1)?.headers['x-user'], user);
    const wrong = await get('/', basic(user, `${password}x`));
    assert.equal(wrong.head?.statusCode, 401, `${user} with a wrong password`);
  }
  await proxy.waitForErrorLine(/\[error\] .*user "apr": password mismatch, client: 127\.0\.0\.1/);
  const unknown = await get('/', basic('nobody', 'x'));
  assert.equal(unknown.head?.statusCode, 401);
  await proxy.waitForErrorLine(/user "nobody" was not found in ".*htpasswd"/);
  const unsupported = await get('/', basic('bcrypt', 'x'));
  assert.equal(unsupported.head?.statusCode, 500);
  assert.equal((await get('/public')).head?.statusCode, 200);

  // nginx reads the file per request: an edit applies at once.
  writeFileSync(users, 'late:{PLAIN}comer\n');
  assert.equal((await get('/', basic('late', 'comer'))).head?.statusCode, 200);
  assert.equal((await get('/', basic('plain', 'open sesame'))).head?.statusCode, 401);
});
