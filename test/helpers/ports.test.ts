import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { refusedPort } from './ports.js';
import { once } from './wait.js';

test('refusedPort: refused at once, and below the range the kernel picks port 0 from (no parallel listener can take it)', async () => {
  const low = process.platform === 'linux' ? Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0]) : 49152;
  for (let i = 0; i < 5; i++) {
    const port = await refusedPort();
    assert.ok(port > 1024 && port < low, `${port} is in 1025..${low - 1}`);
    const socket = connect({ port, host: '127.0.0.1' });
    const [error] = await once(socket, 'error') as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
  }
});
