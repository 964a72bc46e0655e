// The ways Sluice relays an open tunnel, for the suites that run one case against each (the tunnel
// contract, the WebSocket guardrails): the native relay, the TypeScript relay over a socket pair,
// and the TypeScript relay between an HTTP/2 stream (RFC 8441) and a socket.
import assert from 'node:assert/strict';
import { constants as h2 } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import type { RequestContext } from '../../src/proxy/context/request-context.js';
import { nativeTunnels } from '../../src/proxy/tunnel/native-tunnels.js';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { FrameParser, type Frame } from '../../src/websocket/frame-parser.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import type { RawConnection } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2WebSocket } from '../helpers/h2-client.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { maskedFrame, parseResponseHead, readToEnd, serverFrame, waitForBytes, waitForClose, wsHandshakeRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';
import {
  WAIT_MS, halfOpenConnect, startScriptedUpstream, switching101, values, type ScriptedExchange, type ScriptedUpstream, type TunnelEvent,
} from './ws-support.js';

/** The client's end of a tunnel through the proxy. */
export interface ClientEnd {
  /** Its bytes: the client socket (HTTP/1.1) or the client's HTTP/2 stream. */
  readonly io: Duplex;
  /** Bytes of the answer that opened it as they crossed the wire (the 101 head); null where HPACK encodes it (HTTP/2). */
  readonly answerBytes: number | null;
  /** Bytes of the request that opened it as they crossed the wire; null under HPACK. */
  readonly requestBytes: number | null;
  /** How it failed, in its protocol's words (a TCP reset, RST_STREAM), or null: it ended cleanly or is open. */
  failure(): string | null;
}

/** One way of relaying a tunnel, as the contract sees it. */
export interface Implementation {
  readonly name: string;
  /** Whether its tunnels must move to the native addon. */
  readonly native: boolean;
  /** The status that accepts the upgrade, and that the access log shows: 101, or 200 on HTTP/2 (RFC 8441 5). */
  readonly status: number;
  /** The `server {}` lines that listen and pick this implementation. */
  server(): Promise<string>;
  /** Opens a tunnel on `path` through the proxy on `port`, with `headers` added to the request; closed by `t.after`. */
  open(t: TestContext, port: number, path: string, headers?: Readonly<Record<string, string>>): Promise<ClientEnd>;
}

/** A WebSocket upgrade over HTTP/1.1 with raw sockets; `native_tunnels` picks the relay. */
export function http1(name: string, native: boolean): Implementation {
  return {
    name,
    native,
    status: 101,
    server: async () => `listen 127.0.0.1:0;\n    native_tunnels ${native ? 'on' : 'off'};`,
    async open(t, port, path, headers = {}) {
      const socket = await halfOpenConnect(port);
      t.after(() => socket.destroy());
      const request = wsHandshakeRequest({ path, extraHeaders: headers });
      socket.write(request);
      const head = parseResponseHead(await waitForBytes(socket, '\r\n\r\n', WAIT_MS));
      assert.equal(head.statusCode, 101, `the upgrade is accepted: ${head.statusLine}`);
      const recorder = recorderFor(socket);
      recorder.consume(head.headLength);
      return {
        io: socket,
        answerBytes: head.headLength,
        requestBytes: Buffer.byteLength(request),
        failure: () => (recorder.error === null ? null : `socket error ${recorder.error.message}`),
      };
    },
  };
}

/** RFC 8441: extended CONNECT on a TLS HTTP/2 session of its own. */
export const http2: Implementation = {
  name: 'HTTP/2 extended CONNECT',
  native: false,
  status: 200,
  async server() {
    const certs = await testCerts();
    return `listen 127.0.0.1:0 ssl http2;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};`;
  },
  async open(t, port, path, extra = {}) {
    const client = await h2Connect(port, { ca: (await testCerts()).ca.cert, timeoutMs: WAIT_MS });
    t.after(() => client.close());
    const { stream, headers } = await h2WebSocket(client, path, extra, WAIT_MS);
    assert.equal(headers[':status'], 200, 'the extended CONNECT is accepted');
    const recorder = recorderFor(stream);
    return {
      io: stream,
      answerBytes: null,
      requestBytes: null,
      failure() {
        if (stream.closed && stream.rstCode !== h2.NGHTTP2_NO_ERROR) return `RST_STREAM ${stream.rstCode}`;
        return recorder.error === null ? null : `stream error ${recorder.error.message}`;
      },
    };
  },
};

/**
 * SLUICE_NATIVE=off (a machine without the addon) leaves the native relay out: native-tunnel.test.ts
 * fails in the default run when the addon does not load, so it cannot drop out unnoticed there.
 */
export const IMPLEMENTATIONS: readonly Implementation[] = [
  ...(process.env.SLUICE_NATIVE === 'off' ? [] : [http1('native relay', true)]),
  http1('TypeScript relay', false),
  http2,
];

/** Tunnels the addon has taken in this process so far. */
export function adopted(): number {
  return nativeTunnels()?.stats().adopted ?? 0;
}

/** An upstream that accepts every upgrade, answering the key it got (the proxy makes its own for HTTP/2). */
export function acceptingUpstream(t: TestContext): Promise<ScriptedUpstream> {
  return startScriptedUpstream(t, (x: ScriptedExchange) => switching101({ accept: acceptKey(values(x.head, 'sec-websocket-key')[0] ?? '') }));
}

/** Lines around the proxy's server: `main` context, `http` before it, `location /` inside it, `after`: more servers after it. */
export interface ContractExtra {
  main?: string;
  http?: string;
  location?: string;
  after?: string;
}

/** The proxy in front of `upstream` for `impl`, with extra lines. */
export async function contractProxy(t: TestContext, impl: Implementation, upstream: string, extra: ContractExtra = {}): Promise<TestProxy> {
  return startTestProxy(await contractConfig(impl, upstream, extra), { t });
}

export async function contractConfig(impl: Implementation, upstream: string, extra: ContractExtra = {}): Promise<string> {
  return `${extra.main ?? ''}
events {}
http {
  ${extra.http ?? ''}
  server {
    ${await impl.server()}
    location / {
      proxy_pass http://${upstream};
      ${extra.location ?? ''}
    }
  }
  ${extra.after ?? ''}
}`;
}

/** Both ends of an open tunnel and the request context the proxy keeps for it. */
export interface Opened {
  client: ClientEnd;
  up: RawConnection;
  ctx: RequestContext;
}

/**
 * Opens a tunnel on `path` and waits until the proxy says it is open and, for the native relay,
 * until the addon holds it: every case then runs against the implementation it names.
 */
export async function openTunnel(
  t: TestContext, impl: Implementation, proxy: TestProxy, upstream: ScriptedUpstream, events: { opened: TunnelEvent[] }, path: string,
  { native = impl.native, headers = {} }: { native?: boolean; headers?: Readonly<Record<string, string>> } = {},
): Promise<Opened> {
  const before = adopted();
  const client = await impl.open(t, proxy.port, path, headers);
  const x = await upstream.nextExchange();
  const { ctx } = await waitFor(() => events.opened.find((e) => e.ctx.rawUri === path), { timeoutMs: WAIT_MS, what: `the tunnel-open event of ${path}` });
  if (native) await waitFor(() => adopted() > before, { timeoutMs: WAIT_MS, what: 'the addon to take the tunnel' });
  return { client, up: x.conn, ctx };
}

/** The tunnel-close event of `path`, once it came. */
export function closedEvent(events: { closed: TunnelEvent[] }, path: string): Promise<TunnelEvent> {
  return waitFor(() => events.closed.find((e) => e.ctx.rawUri === path), { timeoutMs: WAIT_MS, what: `the tunnel-close event of ${path}` });
}

/** Both sides of the tunnel are closed, neither with a failure. */
export async function closedCleanly({ client, up }: Opened): Promise<void> {
  await waitForClose(client.io, WAIT_MS);
  await waitForClose(up.socket, WAIT_MS);
  assert.equal(client.failure(), null, 'the client side ends cleanly');
  assert.equal(recorderFor(up.socket).error, null, 'the upstream side ends cleanly');
}

/** Ends the client's side, then the upstream's; each end crosses alone, and the tunnel closes cleanly. */
export async function endBoth(tunnel: Opened): Promise<void> {
  tunnel.client.io.end();
  assert.equal((await tunnel.up.readToEnd(WAIT_MS)).length, 0, 'the client\'s end reaches the upstream');
  tunnel.up.socket.end();
  assert.equal((await readToEnd(tunnel.client.io, WAIT_MS)).length, 0, 'the upstream\'s end reaches the client');
  await closedCleanly(tunnel);
}

/** Every frame `io` receives, in order; with `answer`, each ping is answered with a pong of its payload (masked from a client). */
export function frameLog(io: Duplex, answer: 'client' | 'upstream' | null): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser({ maxPayload: Number.MAX_SAFE_INTEGER });
  io.on('data', (chunk: Buffer) => {
    for (const f of parser.feed(chunk)) {
      assert.equal(f.kind, 'frame', `a protocol error: ${JSON.stringify(f)}`);
      const frame = f as Frame;
      frames.push(frame);
      if (frame.opcode === Opcode.PING && answer !== null && !io.destroyed && io.writable) {
        io.write(answer === 'client' ? maskedFrame(Opcode.PONG, frame.payload) : serverFrame(Opcode.PONG, frame.payload));
      }
    }
  });
  return frames;
}

