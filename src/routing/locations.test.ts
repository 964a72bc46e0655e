import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocationConfig, LocationModifier, Settings } from '../config/types.js';
import { LocationLevel } from './locations.js';

function loc(modifier: LocationModifier, pattern: string, children: LocationConfig[] = [], settings: Partial<Settings> = {}): LocationConfig {
  const regex = modifier === '~' ? new RegExp(pattern) : modifier === '~*' ? new RegExp(pattern, 'i') : null;
  return { modifier, pattern, regex, locations: children, settings: settings as Settings, loc: { file: 't', line: 1 } };
}

function name(l: LocationConfig | undefined): string {
  return l ? `${l.modifier}${l.modifier ? ' ' : ''}${l.pattern}` : 'none';
}

test('nginx location precedence: =, then ^~ prefix, then regex in order, then longest prefix', () => {
  // The example from nginx's documentation of "location".
  const level = new LocationLevel([
    loc('=', '/'),
    loc('', '/'),
    loc('', '/documents/'),
    loc('^~', '/images/'),
    loc('~*', '\\.(gif|jpg|jpeg)$'),
  ]);
  assert.equal(name(level.find('/')?.location), '= /');
  assert.equal(name(level.find('/index.html')?.location), '/');
  assert.equal(name(level.find('/documents/document.html')?.location), '/documents/');
  assert.equal(name(level.find('/images/1.gif')?.location), '^~ /images/');
  assert.equal(name(level.find('/documents/1.jpg')?.location), '~* \\.(gif|jpg|jpeg)$');
});

test('regexes are tried in file order and the first match wins; captures are returned', () => {
  const level = new LocationLevel([loc('~', '^/a/(\\d+)'), loc('~', '^/a/(?<id>\\d+)/x'), loc('', '/a/')]);
  const m = level.find('/a/42/x');
  assert.equal(m?.location.pattern, '^/a/(\\d+)');
  assert.equal(m?.captures[1], '42');
});

test('no match at all gives null (nginx answers 404)', () => {
  const level = new LocationLevel([loc('', '/api/'), loc('=', '/x')]);
  assert.equal(level.find('/other'), null);
  assert.equal(level.find('/x/'), null);
});

test('nested locations: a nested regex beats the outer regexes; a nested prefix is remembered', () => {
  const level = new LocationLevel([
    loc('', '/app/', [loc('~', '\\.php$'), loc('', '/app/static/')]),
    loc('~', '\\.(php|js)$'),
  ]);
  assert.equal(name(level.find('/app/x.php')?.location), '~ \\.php$');
  // The nested prefix /app/static/ matches; then the outer regex still applies (no ^~).
  assert.equal(name(level.find('/app/static/x.js')?.location), '~ \\.(php|js)$');
  assert.equal(name(level.find('/app/static/x.css')?.location), '/app/static/');
  assert.equal(name(level.find('/app/y')?.location), '/app/');
});

test('^~ on the matched prefix stops the regex search at that level', () => {
  const level = new LocationLevel([loc('^~', '/static/'), loc('~', '\\.js$'), loc('', '/')]);
  assert.equal(name(level.find('/static/a.js')?.location), '^~ /static/');
  assert.equal(name(level.find('/other/a.js')?.location), '~ \\.js$');
});

test('the longest prefix wins whatever the file order; case-sensitive', () => {
  const level = new LocationLevel([loc('', '/a'), loc('', '/a/b/c'), loc('', '/a/b')]);
  assert.equal(name(level.find('/a/b/cd')?.location), '/a/b/c');
  assert.equal(name(level.find('/a/bx')?.location), '/a/b');
  assert.equal(level.find('/A/b'), null);
});

test('a prefix equal to the whole URI is not final: regexes still apply (checked against nginx 1.22)', () => {
  const level = new LocationLevel([
    loc('', '/logo.gif', [loc('~', 'gif$')]),
    loc('~', '\\.gif$'),
  ]);
  assert.equal(name(level.find('/logo.gif')?.location), '~ gif$');
  assert.equal(name(new LocationLevel([loc('', '/logo.gif'), loc('~', '\\.gif$')]).find('/logo.gif')?.location), '~ \\.gif$');
  assert.equal(name(level.find('/logo.gif/x.gif')?.location), '~ gif$');
});

test('20,000 nested levels: found without recursion, with the same precedence as shallow ones', () => {
  const depth = 20_000;
  /** `depth` prefix locations "/" nested in one another, `inner` inside the innermost. */
  const chain = (modifier: LocationModifier, inner: LocationConfig[] = []): { top: LocationConfig; innermost: LocationConfig } => {
    const innermost = loc('', '/', inner);
    let top = innermost;
    for (let i = 1; i < depth; i++) top = loc(i === depth - 1 ? modifier : '', '/', [top]);
    return { top, innermost };
  };
  const jsRegex = loc('~', '\\.js$');
  const plain = chain('', [jsRegex]);
  const css = loc('~', '\\.css$');
  const level = new LocationLevel([plain.top, css]);
  assert.equal(level.find('/a.js')?.location, jsRegex, 'the innermost level\'s regex is tried first');
  assert.equal(level.find('/a.css')?.location, css, 'then each level\'s regexes on the way back up');
  assert.equal(level.find('/a')?.location, plain.innermost, 'else the deepest prefix');

  const noregex = chain('^~');
  assert.equal(new LocationLevel([noregex.top, css]).find('/a.css')?.location, noregex.innermost, '^~ on the outer prefix');

  // A regex match searches its own nested locations (here a deep prefix chain) and is final.
  const below = chain('');
  const outer = loc('~', '^/', [below.top]);
  assert.equal(new LocationLevel([outer]).find('/a')?.location, below.innermost);
});

test('auto_redirect: a proxying prefix location ending in "/" answers its name without the slash with a redirect', () => {
  const proxy = { proxyPass: {} as Settings['proxyPass'] };
  const level = new LocationLevel([loc('', '/'), loc('', '/ws/', [], proxy), loc('', '/static/'), loc('~', '^/ws$'), loc('', '/x/', [], proxy), loc('', '/x')]);
  const ws = level.find('/ws');
  assert.equal(ws?.redirect, true, 'before the regexes and the shorter prefix "/"');
  assert.equal(ws?.location.pattern, '/ws/');
  assert.equal(level.find('/ws/')?.redirect, undefined);
  assert.equal(level.find('/static')?.redirect, undefined, 'no proxy_pass, no redirect');
  assert.equal(name(level.find('/x')?.location), '/x', 'a prefix named exactly so wins');
  const exact = new LocationLevel([loc('', '/ws/', [], proxy), loc('=', '/ws')]);
  assert.equal(name(exact.find('/ws')?.location), '= /ws', 'location = /ws suppresses it');
});
