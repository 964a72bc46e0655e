/**
 * The running instance's control channel: a Unix socket next to the pid file (`PIDFILE.sock`)
 * where a `sluice -t` for the same configuration asks what a reload would do, before anybody
 * sends the HUP. One JSON line in, one JSON line out, then the connection closes. Read-only:
 * nothing sent here changes the running proxy. Only the instance's user may connect (mode 0600).
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { DrainImpact } from '../server/orphans.js';

/** The control socket of the instance whose pid file is `pidFile`. */
export function controlSocketPath(pidFile: string): string {
  return `${pidFile}.sock`;
}

/** A question for the running instance. */
export type ControlRequest = { readonly op: 'impact'; readonly kept: readonly string[] };

/** The answer: the instance's pid and the figures asked for, or why there are none. */
export type ControlResponse =
  | ({ readonly ok: true; readonly pid: number } & DrainImpact)
  | { readonly ok: false; readonly error: string };

/** What the instance does with a question (sums over its workers when it has several). */
export type ControlHandler = (request: ControlRequest) => Promise<ControlResponse>;

/** Requests larger than this are refused: the kept-server list of a very large config fits easily. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** An open control socket; `close()` stops it and removes the file (idempotent). */
export interface ControlServer {
  readonly path: string;
  close(): void;
}

function isRequest(v: unknown): v is ControlRequest {
  const r = v as { op?: unknown; kept?: unknown };
  return typeof v === 'object' && v !== null && r.op === 'impact' && Array.isArray(r.kept) && r.kept.every((k) => typeof k === 'string');
}

function onConnection(socket: Socket, handler: ControlHandler): void {
  socket.on('error', () => socket.destroy());
  socket.setTimeout(10_000, () => socket.destroy());
  const chunks: Buffer[] = [];
  let size = 0;
  const answer = (res: ControlResponse): void => {
    if (!socket.destroyed) socket.end(`${JSON.stringify(res)}\n`);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) {
      socket.off('data', onData);
      answer({ ok: false, error: 'request too large' });
      return;
    }
    const nl = chunk.indexOf(0x0a);
    if (nl < 0) {
      chunks.push(chunk);
      return;
    }
    chunks.push(chunk.subarray(0, nl));
    socket.off('data', onData);
    let request: unknown;
    try {
      request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      answer({ ok: false, error: 'not JSON' });
      return;
    }
    if (!isRequest(request)) {
      answer({ ok: false, error: 'unknown request' });
      return;
    }
    handler(request).then(answer, (e: unknown) => answer({ ok: false, error: (e as Error).message }));
  };
  socket.on('data', onData);
}

/**
 * Listens on `path`, replacing a stale socket file left by an instance that was killed.
 * Rejects when the socket cannot be made (a path too long for a Unix socket, say).
 */
export function serveControl(path: string, handler: ControlHandler): Promise<ControlServer> {
  rmSync(path, { force: true });
  const server: Server = createServer((socket) => onConnection(socket, handler));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      server.unref();
      try {
        chmodSync(path, 0o600);
      } catch {
        // The socket still works; it is only as open as the umask made it.
      }
      let closed = false;
      resolve({
        path,
        close() {
          if (closed) return;
          closed = true;
          server.close();
          rmSync(path, { force: true });
        },
      });
    });
  });
}

/** Asks the instance listening on `path`; null when nobody answers within `timeoutMs`. */
export function askControl(path: string, request: ControlRequest, timeoutMs = 5_000): Promise<ControlResponse | null> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (res: ControlResponse | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      try {
        finish(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ControlResponse);
      } catch {
        finish(null);
      }
    });
    socket.on('close', () => finish(null));
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

/**
 * What reloading the instance named by `pidFile` with a config keeping these upstream servers
 * would drain: null when there is no pid file, no such process, or no answer (an instance that
 * has no control socket, or a stale pid file naming some other process).
 */
export async function askRunningInstance(pidFile: string, kept: ReadonlySet<string>, timeoutMs = 5_000): Promise<{ pid: number; open: number; drained: number } | null> {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8').trim();
  } catch {
    return null;
  }
  if (!/^\d+$/.test(text) || Number(text) <= 0) return null;
  try {
    process.kill(Number(text), 0);
  } catch (e) {
    // EPERM: alive but another user's; its socket decides whether we may ask.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  const res = await askControl(controlSocketPath(pidFile), { op: 'impact', kept: [...kept] }, timeoutMs);
  if (res === null || !res.ok) return null;
  return { pid: res.pid, open: res.open, drained: res.drained };
}
