/** `sticky learn` (nginx Plus): what it loads to, and every problem with file:line and hint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';

const upstream = (sticky: string): string => http(`  upstream u { server 127.0.0.1:1; ${sticky} }`, '  server { location / { proxy_pass http://u; } }');

test('sticky learn: every parameter, repeated create and lookup, defaults', async () => {
  const full = (await good(upstream('sticky learn create=$upstream_cookie_a create=$upstream_cookie_b lookup=$cookie_a lookup=$arg_s zone=client_sessions:2m timeout=1h header sync;'))).http!.upstreams.get('u')!;
  const l = full.stickyLearn!;
  assert.deepEqual([l.create.length, l.lookup.length, l.zone, l.size, l.timeout, l.header, l.sync], [2, 2, 'client_sessions', 2 << 20, 3_600_000, true, true]);
  assert.equal(full.sticky, null);
  const min = (await good(upstream('sticky learn lookup=$cookie_a create=$upstream_cookie_a zone=s:32k;'))).http!.upstreams.get('u')!.stickyLearn!;
  assert.deepEqual([min.timeout, min.header, min.sync, min.size], [600_000, false, false, 32768]);
  assert.equal((await good(upstream('sticky cookie srv;'))).http!.upstreams.get('u')!.stickyLearn, undefined);
});

test('sticky learn: problems', async () => {
  const cases: [string, string, string][] = [
    ['sticky learn lookup=$cookie_a zone=s:1m;', '"create" parameter is missing in "sticky learn" in <inline>:3', 'create=$upstream_cookie_NAME'],
    ['sticky learn create=$upstream_cookie_a zone=s:1m;', '"lookup" parameter is missing in "sticky learn" in <inline>:3', 'lookup=$cookie_NAME'],
    ['sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=s;', 'invalid zone size "zone=s" in <inline>:3', 'zone=NAME:SIZE'],
    ['sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=s:1k;', 'zone "zone=s:1k" is too small in <inline>:3', '32k'],
    ['sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=s:1m timeout=soon;', 'invalid parameter "timeout=soon" in <inline>:3', 'duration'],
    ['sticky learn create=sid lookup=$cookie_a zone=s:1m;', 'invalid parameter "create=sid" in <inline>:3', 'create=$upstream_cookie_sessionid'],
    ['sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=s:1m bogus;', 'invalid parameter "bogus" in <inline>:3', 'sticky learn create='],
    ['sticky learn create=$upstream_cookie_a lookup=$nope zone=s:1m;', 'unknown "nope" variable in <inline>:3', ''],
  ];
  for (const [line, message, hint] of cases) {
    const problems = await bad(upstream(line));
    assert.deepEqual(problems.map(show), [message], line);
    assert.ok((problems[0]!.hint ?? '').includes(hint), `${line}: ${problems[0]!.hint}`);
  }
});
