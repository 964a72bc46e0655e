/**
 * The load driver: a child process (forked by the harness, IPC) that holds WebSocket connections
 * on raw sockets and drives them. Frames are built and masked once and written as they are; the
 * read side only walks frame headers. Every connection keeps a queue of the times its messages
 * were sent (or, in the open loop, were due to be sent), and an echo is matched to the oldest
 * one, so a message that waited behind others is charged for the wait. It reports its own CPU so
 * a run can tell when the driver, not the proxy, was the limit.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type {
  ClosedLoopCommand,
  DriverCommand,
  DriverReply,
  DriverRequest,
  HandshakesCommand,
  OpenCommand,
  OpenLoopCommand,
  OpenResult,
  WindowStats,
} from './driver-protocol.js';
import { Histogram } from './histogram.js';
import { CLOSE_FRAME, FrameCounter, binaryMessage, handshakeRequest } from './ws-frames.js';

/** A FIFO of send times that grows as needed and never shifts an array. */
class TimeQueue {
  #buf = new Float64Array(16);
  #head = 0;
  size = 0;

  push(t: number): void {
    if (this.size === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      for (let i = 0; i < this.size; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length]!;
      this.#buf = next;
      this.#head = 0;
    }
    this.#buf[(this.#head + this.size) % this.#buf.length] = t;
    this.size++;
  }

  shift(): number {
    if (this.size === 0) return NaN;
    const t = this.#buf[this.#head]!;
    this.#head = (this.#head + 1) % this.#buf.length;
    this.size--;
    return t;
  }

  clear(): void {
    this.#head = 0;
    this.size = 0;
  }
}

interface Conn {
  readonly sock: Socket;
  readonly counter: FrameCounter;
  readonly q: TimeQueue;
  closing: boolean;
}

const kConn = Symbol('conn');
type ConnSocket = Socket & { [kConn]?: Conn };

const conns: Conn[] = [];
const hist = new Histogram();
let measuring = false;
let mode: 'none' | 'closed' | 'open' = 'none';
let frame: Buffer = Buffer.alloc(0);
let messages = 0;
let handshakes = 0;
let errors = 0;
let errorSamples: string[] = [];
let markCpu = process.cpuUsage();
let markAt = performance.now();
let openTimer: NodeJS.Timeout | undefined;
let openers: Promise<void>[] = [];
let handshaking = false;

function noteError(what: string): void {
  errors++;
  if (errorSamples.length < 5) errorSamples.push(what);
}

function connOnData(this: Socket, chunk: Buffer): void {
  const c = (this as ConnSocket)[kConn]!;
  const n = c.counter.feed(chunk);
  if (n === 0) return;
  const now = performance.now();
  for (let k = 0; k < n; k++) {
    const sentAt = c.q.shift();
    if (measuring && sentAt === sentAt) {
      messages++;
      hist.record((now - sentAt) * 1000);
    }
  }
  if (mode === 'closed' && !c.closing) {
    if (n === 1) {
      c.q.push(now);
      c.sock.write(frame);
    } else {
      c.sock.cork();
      for (let k = 0; k < n; k++) {
        c.q.push(now);
        c.sock.write(frame);
      }
      c.sock.uncork();
    }
  }
}

function connOnError(this: Socket, err: Error): void {
  const c = (this as ConnSocket)[kConn];
  if (c?.closing) return;
  noteError(`socket error: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
}

function connOnClose(this: Socket): void {
  const c = (this as ConnSocket)[kConn];
  if (!c || c.closing) return;
  c.closing = true;
  noteError(`connection closed by the other side${c.counter.closed ? ' (close frame)' : ''}`);
  const i = conns.indexOf(c);
  if (i >= 0) conns.splice(i, 1);
}

interface Handshaken {
  readonly sock: Socket;
  readonly rest: Buffer;
}

/** Connects and completes a WebSocket handshake; rejects on anything but a 101 within `timeoutMs`. */
function handshake(host: string, port: number, path: string, localAddress: string | undefined, timeoutMs: number): Promise<Handshaken> {
  return new Promise((resolve, reject) => {
    const sock = localAddress ? connect({ host, port, localAddress }) : connect({ host, port });
    let head: Buffer = Buffer.alloc(0);
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('handshake timeout'), timeoutMs);
    sock.setNoDelay(true);
    sock.on('error', (e: NodeJS.ErrnoException) => fail(`connect/handshake error: ${e.code ?? e.message}`));
    sock.on('close', () => fail('closed during handshake'));
    sock.on('connect', () => sock.write(handshakeRequest(`${host}:${port}`, path)));
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) fail('handshake response head too large');
        return;
      }
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        fail(`handshake answered "${status}"`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.removeAllListeners('error');
      sock.removeAllListeners('close');
      sock.removeAllListeners('connect');
      resolve({ sock, rest: head.subarray(end + 4) });
    };
    sock.on('data', onData);
  });
}

function adopt(h: Handshaken): Conn {
  const c: Conn = { sock: h.sock, counter: new FrameCounter(), q: new TimeQueue(), closing: false };
  (h.sock as ConnSocket)[kConn] = c;
  h.sock.on('data', connOnData);
  h.sock.on('error', connOnError);
  h.sock.on('close', connOnClose);
  if (h.rest.length > 0) c.counter.feed(h.rest);
  conns.push(c);
  return c;
}

async function open(o: OpenCommand): Promise<OpenResult> {
  const t0 = performance.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const samples: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < o.count) {
      const i = next++;
      const src = o.sources.length > 0 ? o.sources[(conns.length + i) % o.sources.length] : undefined;
      try {
        adopt(await handshake(o.host, o.port, o.path, src, o.timeoutMs));
        opened++;
      } catch (e) {
        failed++;
        if (samples.length < 5) samples.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.count)) }, worker));
  return { opened, failed, total: conns.length, ms: performance.now() - t0, errorSamples: samples };
}

function closedLoop(o: ClosedLoopCommand): void {
  frame = binaryMessage(o.size);
  mode = 'closed';
  const now = performance.now();
  for (const c of conns) {
    c.sock.cork();
    for (let k = 0; k < o.depth; k++) {
      c.q.push(now);
      c.sock.write(frame);
    }
    c.sock.uncork();
  }
}

function openLoop(o: OpenLoopCommand): void {
  frame = binaryMessage(o.size);
  mode = 'open';
  const t0 = performance.now();
  const perMs = o.rate / 1000;
  let sent = 0;
  const tick = (): void => {
    if (conns.length === 0) return;
    // Message k is due at t0 + k / perMs, so by time t the first floor((t - t0) * perMs) + 1 are due.
    const due = Math.floor((performance.now() - t0) * perMs) + 1;
    while (sent < due) {
      const c = conns[sent % conns.length]!;
      c.q.push(t0 + sent / perMs);
      c.sock.write(frame);
      sent++;
    }
  };
  openTimer = setInterval(tick, 1);
}

function closeGracefully(sock: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      sock.destroy();
    }, timeoutMs);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    sock.on('error', () => {});
    sock.on('data', () => {});
    sock.end(CLOSE_FRAME);
  });
}

function handshakeLoops(o: HandshakesCommand): void {
  handshaking = true;
  let n = 0;
  const loop = async (): Promise<void> => {
    while (handshaking) {
      const src = o.sources.length > 0 ? o.sources[n++ % o.sources.length] : undefined;
      const t = performance.now();
      let h: Handshaken;
      try {
        h = await handshake(o.host, o.port, o.path, src, o.timeoutMs);
      } catch (e) {
        if (handshaking) noteError((e as Error).message);
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (measuring) {
        handshakes++;
        hist.record((performance.now() - t) * 1000);
      }
      await closeGracefully(h.sock, o.timeoutMs);
    }
  };
  openers = Array.from({ length: o.concurrency }, loop);
}

function mark(): void {
  hist.reset();
  messages = 0;
  handshakes = 0;
  errors = 0;
  errorSamples = [];
  markCpu = process.cpuUsage();
  markAt = performance.now();
  measuring = true;
}

function backlog(): number {
  let b = 0;
  for (const c of conns) b += c.q.size;
  return b;
}

async function stop(drainMs: number): Promise<WindowStats> {
  measuring = false;
  const cpu = process.cpuUsage(markCpu);
  const wallMs = performance.now() - markAt;
  const snapshot = { messages, handshakes, hist: hist.toJSON(), cpuUs: cpu.user + cpu.system, wallMs, errors, errorSamples: [...errorSamples] };
  mode = 'none';
  if (openTimer) clearInterval(openTimer);
  openTimer = undefined;
  handshaking = false;
  const atStop = backlog();
  const deadline = performance.now() + drainMs;
  while (backlog() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await Promise.race([Promise.all(openers), new Promise((r) => setTimeout(r, drainMs))]);
  openers = [];
  const undrained = backlog();
  for (const c of conns) c.q.clear();
  return { ...snapshot, backlog: atStop, undrained };
}

async function closeAll(timeoutMs: number): Promise<number> {
  const all = conns.splice(0);
  await Promise.all(
    all.map((c) => {
      c.closing = true;
      return new Promise<void>((resolve) => {
        if (c.sock.destroyed) {
          resolve();
          return;
        }
        const timer = setTimeout(resolve, timeoutMs);
        c.sock.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        c.sock.destroy();
      });
    }),
  );
  return all.length;
}

async function handle(command: DriverCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'open':
      return open(command);
    case 'closedLoop':
      closedLoop(command);
      return null;
    case 'openLoop':
      openLoop(command);
      return null;
    case 'handshakes':
      handshakeLoops(command);
      return null;
    case 'mark':
      mark();
      return null;
    case 'stop':
      return stop(command.drainMs);
    case 'closeAll':
      return closeAll(command.timeoutMs);
  }
}

function reply(r: DriverReply): void {
  if (process.connected) process.send?.(r);
}

process.on('message', (m: DriverRequest) => {
  handle(m.command).then(
    (result) => reply({ id: m.id, ok: true, result }),
    (e: unknown) => reply({ id: m.id, ok: false, error: (e as Error).stack ?? String(e) }),
  );
});
// The harness owns this process: when it goes away, so does the driver.
process.on('disconnect', () => process.exit(0));
