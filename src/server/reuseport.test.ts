import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeHasReusePort } from './reuseport.js';

test('nodeHasReusePort: Node 22.12+ and 23.1+ on Linux and FreeBSD, not before, not on macOS or Windows', () => {
  const cases: [string, string, boolean][] = [
    ['20.20.2', 'linux', false], ['22.11.0', 'linux', false], ['22.12.0', 'linux', true], ['22.23.5', 'linux', true],
    ['23.0.0', 'linux', false], ['23.1.0', 'linux', true], ['24.0.0', 'linux', true], ['26.10.0', 'freebsd', true],
    ['24.0.0', 'darwin', false], ['24.0.0', 'win32', false],
  ];
  for (const [version, platform, want] of cases) assert.equal(nodeHasReusePort(version, platform), want, `${version} ${platform}`);
});
