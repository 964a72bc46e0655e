import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../config/types.js';
import { nodeHasReusePort, workersAcceptShared } from './reuseport.js';

test('nodeHasReusePort: Node 22.12+ and 23.1+ on Linux and FreeBSD, not before, not on macOS or Windows', () => {
  const cases: [string, string, boolean][] = [
    ['20.20.2', 'linux', false], ['22.11.0', 'linux', false], ['22.12.0', 'linux', true], ['22.23.5', 'linux', true],
    ['23.0.0', 'linux', false], ['23.1.0', 'linux', true], ['24.0.0', 'linux', true], ['26.10.0', 'freebsd', true],
    ['24.0.0', 'darwin', false], ['24.0.0', 'win32', false],
  ];
  for (const [version, platform, want] of cases) assert.equal(nodeHasReusePort(version, platform), want, `${version} ${platform}`);
});

test('workersAcceptShared: only where a listen asks for reuseport and Node has no reusePort', () => {
  const config = (reuseport: boolean[]): Config => ({
    http: { servers: reuseport.map((r) => ({ listens: [{ socket: { reuseport: r } }, {}] })) },
  }) as unknown as Config;
  assert.equal(workersAcceptShared(config([false, true]), false), true);
  assert.equal(workersAcceptShared(config([false, true]), true), false, 'reusePort: a socket per worker instead');
  assert.equal(workersAcceptShared(config([false, false]), false), false, 'no reuseport: round robin');
  assert.equal(workersAcceptShared({ http: null } as unknown as Config, false), false);
});
