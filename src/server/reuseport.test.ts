import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../config/types.js';
import { closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tunnelAddon } from '../core/native-addon.js';
import { addonReusePort, nodeHasReusePort, reusePortAvailable, workersAcceptShared } from './reuseport.js';

test('nodeHasReusePort: Node 22.12+ and 23.1+ on Linux and FreeBSD, not before, not on macOS or Windows', () => {
  const cases: [string, string, boolean][] = [
    ['20.20.2', 'linux', false], ['22.11.0', 'linux', false], ['22.12.0', 'linux', true], ['22.23.5', 'linux', true],
    ['23.0.0', 'linux', false], ['23.1.0', 'linux', true], ['24.0.0', 'linux', true], ['26.10.0', 'freebsd', true],
    ['24.0.0', 'darwin', false], ['24.0.0', 'win32', false],
  ];
  for (const [version, platform, want] of cases) assert.equal(nodeHasReusePort(version, platform), want, `${version} ${platform}`);
});

test('workersAcceptShared: with accept_mutex off; with it on only where a listen asks for reuseport and no socket per worker can be made', () => {
  const config = (reuseport: boolean[], acceptMutex = true): Config => ({
    acceptMutex,
    http: { servers: reuseport.map((r) => ({ listens: [{ socket: { reuseport: r } }, {}] })) },
  }) as unknown as Config;
  assert.equal(workersAcceptShared(config([false, true]), false), true);
  assert.equal(workersAcceptShared(config([false, true]), true), false, 'reusePort: a socket per worker instead');
  assert.equal(workersAcceptShared(config([false, false]), false), false, 'no reuseport: round robin');
  assert.equal(workersAcceptShared({ acceptMutex: true, http: null } as unknown as Config, false), false);
  assert.equal(workersAcceptShared(config([false, false], false), true), true, 'accept_mutex off: the shared socket');
});

test('the addon opens SO_REUSEPORT sockets (for a Node without reusePort): two on one port; a socket without it cannot bind there; errors are -errno', async () => {
  const bind = tunnelAddon()?.bindReusePort;
  if (bind === undefined) {
    // SLUICE_NATIVE=off (the ts-tunnel pass) or no addon: only Node's own reusePort is left.
    assert.equal(addonReusePort(), null);
    assert.equal(reusePortAvailable(), nodeHasReusePort());
    return;
  }
  assert.equal(reusePortAvailable(), true);
  assert.equal(addonReusePort() === null, nodeHasReusePort(), 'used only where Node has no reusePort');
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as { port: number }).port;
  probe.close();
  await once(probe, 'close');
  const a = bind.call(tunnelAddon(), '127.0.0.1', port, false, 16);
  const b = bind.call(tunnelAddon(), '127.0.0.1', port, false, 16);
  try {
    assert.ok(a >= 0 && b >= 0, `${a} ${b}`);
    const plain = createServer().listen(port, '127.0.0.1');
    const [err] = (await once(plain, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'EADDRINUSE');
  } finally {
    if (a >= 0) closeSync(a);
    if (b >= 0) closeSync(b);
  }
  assert.equal(bind.call(tunnelAddon(), 'localhost', port, false, 16), -22, 'a name, not an address: -EINVAL');
  const v6 = bind.call(tunnelAddon(), '::1', port, true, 16);
  if (v6 >= 0) closeSync(v6);
  else assert.equal(v6, -99, 'no IPv6 loopback here: -EADDRNOTAVAIL');
});
