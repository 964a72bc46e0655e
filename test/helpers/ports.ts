import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { AfterHook } from './temp.js';
import { delay, waitFor, withTimeout } from './wait.js';

/**
 * A port on 127.0.0.1 that was free a moment ago (the kernel picked it for port 0; the listener
 * is closed again). Only for a child that must be told its port before it says which one it
 * bound, e.g. to connect the instant its pid file appears; everything else listens on port 0.
 * For a port nothing listens on, use {@link refusedPort}.
 */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The lowest port the kernel hands out for port 0 (Linux: net.ipv4.ip_local_port_range; elsewhere
 * the IANA dynamic range, which macOS and Windows use).
 */
function firstEphemeralPort(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // not Linux
  }
  return 49152;
}

/** Whether a connection to 127.0.0.1:`port` is refused now. */
function refusedNow(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/**
 * A loopback port where nothing listens, so a connection to it is refused at once (a dead
 * upstream server). It is picked below the kernel's port-0 range, so that no listener another
 * test file opens meanwhile (they run in parallel, all on port 0) can take it, and no connection
 * can get it as its own local port and connect to itself; and it is checked to be refused.
 */
/** Ports refusedPort handed out in this process: never twice (four dead servers are four ports). */
const handedOut = new Set<number>();

export async function refusedPort(): Promise<number> {
  const low = firstEphemeralPort();
  for (let i = 0; i < 20; i++) {
    const port = 1024 + Math.floor(Math.random() * (low - 1024));
    if (handedOut.has(port)) continue;
    if (await refusedNow(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no refused port found below ${low} in 20 tries: is something listening on all of them?`);
}

/**
 * A port below 1024 on 127.0.0.1 that was free a moment ago (only root may bind it): tried at
 * random in 600-1023, for tests of what binding such a port takes. Null when not running as root.
 */
export async function privilegedPort(): Promise<number | null> {
  if (process.geteuid?.() !== 0) return null;
  for (let i = 0; i < 50; i++) {
    const port = 600 + Math.floor(Math.random() * 424);
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
  throw new Error('no free port between 600 and 1023 on 127.0.0.1');
}

/**
 * A loopback port where connect() hangs: a listener (backlog 1) on a worker thread whose event
 * loop is blocked, so nothing is ever accepted. Linux completes at most backlog + 1 handshakes
 * into the accept queue and then drops further SYNs, so once filler connections have filled the
 * queue, a new connect stays pending until the caller gives up.
 */
export async function blackholePort(t: AfterHook): Promise<number> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { workerData: flag, parentPort } = require('node:worker_threads');
    const server = require('node:net').createServer();
    server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      parentPort.postMessage(server.address().port);
      while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 200);
      server.close();
    });`, { eval: true, workerData: flag });
  const fillers: Socket[] = [];
  t.after(async () => {
    for (const s of fillers) s.destroy();
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await withTimeout(new Promise((resolve) => worker.once('exit', resolve)), 5000, 'the blackhole worker to exit');
  });
  const port = await withTimeout(new Promise<number>((resolve) => worker.once('message', resolve)), 5000, 'the blackhole listener');
  let connected = 0;
  for (let i = 0; i < 6; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('connect', () => connected++);
    fillers.push(s);
  }
  await waitFor(() => connected >= 2, { what: 'the accept queue of the blackhole listener to fill' });
  await delay(200);
  assert.ok(connected < fillers.length, `every filler connected (${connected}): this kernel does not drop SYNs on a full accept queue`);
  return port;
}
