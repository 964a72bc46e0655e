/** The strict exposition parser rejects what the format forbids (so a passing parse means something). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheus, sampleValue } from './prometheus.js';

const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n'
  + '# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n';

test('accepts valid text and reads values back', () => {
  const f = parsePrometheus(ok);
  assert.equal(sampleValue(f, 'a_total', { x: '1' }), 3);
  assert.equal(f.get('a_total')?.help, 'A.');
  assert.equal(sampleValue(parsePrometheus('# TYPE g gauge\ng{v="a\\"b\\\\c\\nd"} -1.5e3\n'), 'g', { v: 'a"b\\c\nd' }), -1500);
});

test('rejects each rule broken', () => {
  const bad: [string, RegExp][] = [
    ['a_total 1\n# TYPE a_total counter\n', /TYPE after samples|has no TYPE/],
    ['# TYPE a counter\na 1\n', /does not end in _total/],
    ['# TYPE 1a gauge\n', /invalid metric name/],
    ['# TYPE g gauge\ng{1x="a"} 1\n', /invalid label name/],
    ['# TYPE g gauge\ng{x="a\\t"} 1\n', /invalid escape/],
    ['# TYPE g gauge\ng{x=a} 1\n', /not quoted/],
    ['# TYPE g gauge\ng 1,5\n', /not a float/],
    ['# TYPE g gauge\ng 1', /line feed/],
    ['# TYPE g gauge\ng 1\ng 2\n', /duplicate series/],
    ['# TYPE g gauge\n# TYPE g gauge\n', /second TYPE/],
    ['# TYPE g gauge\ng 1\n# TYPE k gauge\nk 1\ng{a="b"} 1\n', /not contiguous/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /counts fall/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n', /differs from _count/],
    ['# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /does not rise/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /not le="\+Inf"/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n', /no _sum/],
    ['# TYPE g gauge\n\ng 1\n', /empty line/],
  ];
  for (const [text, message] of bad) assert.throws(() => parsePrometheus(text), message, JSON.stringify(text));
});
