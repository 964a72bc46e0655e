/**
 * `limit_conn_zone ... fleet` and `limit_req_zone ... fleet`: what they load to, and the problems
 * -t reports (docs/configuration.md#limit_conn_zone, docs/fleet.md "Shared limits").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, lines, show } from './fixtures.js';

function zones(fleet: string, ...zoneLines: string[]): string {
  return lines(fleet, 'events {}', 'http {', ...zoneLines, '  server { location / { limit_conn c 1; limit_req zone=r; } }', '}');
}

test('limit zones with a trailing fleet load as fleet zones; without it they stay local', async () => {
  const config = await good(zones('fleet redis://127.0.0.1:6390;',
    '  limit_conn_zone $binary_remote_addr zone=c:1m fleet;',
    '  limit_req_zone $binary_remote_addr zone=r:1m rate=5r/s fleet;',
    '  limit_req_zone $binary_remote_addr zone=l:1m rate=5r/s;'));
  const z = config.http!.limitZones;
  assert.deepEqual([z.get('c')!.fleet, z.get('r')!.fleet, z.get('l')!.fleet], [true, true, undefined]);
  assert.equal(z.get('r')!.rate, 5000);
  // `fleet` may come anywhere after the key, as nginx reads the other parameters.
  const early = await good(zones('fleet redis://h;', '  limit_conn_zone $binary_remote_addr fleet zone=c:1m;', '  limit_req_zone $binary_remote_addr fleet rate=1r/s zone=r:1m;'));
  assert.equal(early.http!.limitZones.get('r')!.fleet, true);
});

test('limit zones with fleet: problems with file:line and hints', async () => {
  const cases: [string, string[], RegExp?][] = [
    [zones('', '  limit_conn_zone $binary_remote_addr zone=c:1m fleet;', '  limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s;'),
      ['"limit_conn_zone ... fleet" requires the "fleet" directive in <inline>:4'], /fleet redis:\/\/HOST:6379.*remove "fleet"/],
    [zones('', '  limit_conn_zone $binary_remote_addr zone=c:1m;', '  limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s fleet;'),
      ['"limit_req_zone ... fleet" requires the "fleet" directive in <inline>:5']],
    [zones('fleet redis://h;', '  limit_conn_zone $binary_remote_addr zone=c:1m fleet fleet;', '  limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s;'),
      ['invalid number of arguments in "limit_conn_zone" directive in <inline>:4', 'zero size shared memory zone "c" in <inline>:6']],
    [zones('fleet redis://h;', '  limit_conn_zone $binary_remote_addr zone=c:1m;', '  limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s fleet=yes;'),
      ['invalid parameter "fleet=yes" in <inline>:5', 'zero size shared memory zone "r" in <inline>:6']],
  ];
  for (const [text, expected, hint] of cases) {
    const problems = await bad(text);
    assert.deepEqual(problems.map(show), expected, text);
    if (hint) assert.match(problems[0]!.hint ?? '', hint, text);
  }
});
