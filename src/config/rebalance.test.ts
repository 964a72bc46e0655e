/** websocket_rebalance in an upstream: its parameters, its defaults, and every problem with its file:line and hint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, good, http, show } from './fixtures.js';
import { formatProblem } from './problems.js';

function withRebalance(line: string, method = 'least_conn;'): string {
  return http(`  upstream app { ${method} server 127.0.0.1:1; server 127.0.0.1:2; ${line} }`, '  server { location / { proxy_pass http://app; } }');
}

test('defaults: max_rate=10/s, tolerance=20%, code=1012; absent: off', async () => {
  const config = await good(withRebalance('websocket_rebalance;'));
  assert.deepEqual(config.http!.upstreams.get('app')!.rebalance, { maxRate: 10, tolerance: 0.2, code: 1012, loc: { file: '<inline>', line: 3 } });
  const off = await good(withRebalance(''));
  assert.equal(off.http!.upstreams.get('app')!.rebalance, null);
});

test('every parameter, in any order; rates per second or per minute; random two least_conn places by load too', async () => {
  const config = await good(withRebalance('websocket_rebalance code=4000 tolerance=5% max_rate=30r/m;', 'random two;'));
  const r = config.http!.upstreams.get('app')!.rebalance!;
  assert.deepEqual([r.maxRate, r.tolerance, r.code], [0.5, 0.05, 4000]);
  const plain = (await good(withRebalance('websocket_rebalance max_rate=100/s tolerance=0 code=1001;'))).http!.upstreams.get('app')!.rebalance!;
  assert.deepEqual([plain.maxRate, plain.tolerance, plain.code], [100, 0, 1001]);
});

test('problems: nginx wording, file:line, a hint', async () => {
  const cases: { line: string; method?: string; problems: string[]; hint: string }[] = [
    { line: 'websocket_rebalance max_rate=0/s;', problems: ['invalid rate "max_rate=0/s" in <inline>:3'], hint: 'max_rate=10/s' },
    { line: 'websocket_rebalance max_rate=fast;', problems: ['invalid rate "max_rate=fast" in <inline>:3'], hint: 'per second or per minute' },
    { line: 'websocket_rebalance tolerance=-5%;', problems: ['invalid tolerance "tolerance=-5%" in <inline>:3'], hint: '0% to 1000%' },
    { line: 'websocket_rebalance tolerance=2000%;', problems: ['invalid tolerance "tolerance=2000%" in <inline>:3'], hint: '0% to 1000%' },
    { line: 'websocket_rebalance code=1006;', problems: ['invalid close code "code=1006" in <inline>:3'], hint: '3000-4999' },
    { line: 'websocket_rebalance code=5000;', problems: ['invalid close code "code=5000" in <inline>:3'], hint: '1012 (Service Restart)' },
    { line: 'websocket_rebalance code=999;', problems: ['invalid close code "code=999" in <inline>:3'], hint: 'RFC 6455' },
    { line: 'websocket_rebalance rate=10/s;', problems: ['invalid parameter "rate=10/s" in <inline>:3'], hint: 'max_rate=N/s' },
    { line: 'websocket_rebalance on;', problems: ['invalid parameter "on" in <inline>:3'], hint: 'tolerance=PERCENT' },
    { line: 'websocket_rebalance code=1012 code=1013;', problems: ['duplicate parameter "code=1013" in <inline>:3'], hint: 'once' },
    { line: 'websocket_rebalance; websocket_rebalance;', problems: ['"websocket_rebalance" directive is duplicate in <inline>:3'], hint: '' },
    { line: 'websocket_rebalance;', method: '', problems: ['"websocket_rebalance" needs a balancing method that places clients by load in <inline>:3'], hint: 'add "least_conn;"' },
    { line: 'websocket_rebalance;', method: 'ip_hash;', problems: ['"websocket_rebalance" needs a balancing method that places clients by load in <inline>:3'], hint: '"ip_hash" (<inline>:3)' },
    { line: 'websocket_rebalance;', method: 'hash $remote_addr;', problems: ['"websocket_rebalance" needs a balancing method that places clients by load in <inline>:3'], hint: 'random two least_conn' },
    { line: 'websocket_rebalance;', method: 'random;', problems: ['"websocket_rebalance" needs a balancing method that places clients by load in <inline>:3'], hint: 'least_conn' },
    { line: 'sticky cookie srv; websocket_rebalance;', problems: ['"websocket_rebalance" cannot move tunnels of an upstream with "sticky" in <inline>:3'], hint: 'cookie names' },
  ];
  for (const c of cases) {
    const problems = await bad(withRebalance(c.line, c.method));
    assert.deepEqual(problems.map(show), c.problems, c.line);
    assert.ok((problems[0]?.hint ?? '').includes(c.hint), `${c.line}: hint ${JSON.stringify(problems[0]?.hint)} should include ${JSON.stringify(c.hint)}`);
  }
});

test('only in an upstream', async () => {
  const problems = await bad(http('  websocket_rebalance;', '  server { location / { return 200; } }'));
  assert.deepEqual(problems.map(show), ['"websocket_rebalance" directive is not allowed here in <inline>:3']);
  assert.match(formatProblem(problems[0]!), /^\[emerg\] "websocket_rebalance" directive is not allowed here in <inline>:3/);
});
