import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StickyCookie } from '../config/types.js';
import { testPeer } from './balancers/fixtures.js';
import { StickyRoutes } from './sticky.js';

const COOKIE: StickyCookie = { name: 'srv', expires: 3_600_000, domain: '.example.com', path: '/', httpOnly: true, secure: true, sameSite: 'lax', secret: null };

test('sticky ids are opaque, stable for a secret, and differ between servers and secrets', () => {
  const a = testPeer(1), b = testPeer(2);
  const s1 = new StickyRoutes(COOKIE, 'up', [a, b], Buffer.alloc(32, 1));
  const s2 = new StickyRoutes(COOKIE, 'up', [a, b], Buffer.alloc(32, 1));
  const s3 = new StickyRoutes(COOKIE, 'up', [a, b], Buffer.alloc(32, 2));
  assert.equal(s1.idFor(a), s2.idFor(a));
  assert.notEqual(s1.idFor(a), s1.idFor(b));
  assert.notEqual(s1.idFor(a), s3.idFor(a));
  assert.ok(!s1.idFor(a).includes('127.0.0.1') && !s1.idFor(a).includes('1'.repeat(3)));
  assert.equal(s1.peerFor(s1.idFor(b)), b);
  assert.equal(s1.peerFor('forged'), undefined);
  assert.equal(s1.peerFor(undefined), undefined);
});

test('Set-Cookie carries every attribute, and is not repeated when the request named the server', () => {
  const a = testPeer(1);
  const s = new StickyRoutes(COOKIE, 'up', [a], Buffer.alloc(32, 1));
  const v = s.setCookie(a, undefined) as string;
  assert.match(v, new RegExp(`^srv=${s.idFor(a)}; Expires=[A-Z][a-z]{2}, \\d\\d [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d:\\d\\d GMT; Max-Age=3600; Domain=\\.example\\.com; Path=/; HttpOnly; Secure; SameSite=Lax$`));
  assert.equal(s.setCookie(a, s.idFor(a)), null);
  const session = new StickyRoutes({ ...COOKIE, expires: null, domain: null, httpOnly: false, secure: false, sameSite: null }, 'up', [a], Buffer.alloc(32, 1));
  assert.equal(session.setCookie(a, 'stale'), `srv=${session.idFor(a)}; Path=/`);
  const max = new StickyRoutes({ ...COOKIE, expires: Infinity }, 'up', [a], Buffer.alloc(32, 1));
  assert.match(max.setCookie(a, undefined) as string, /Expires=Thu, 31 Dec 2037 23:55:55 GMT; Max-Age=315360000/);
});
