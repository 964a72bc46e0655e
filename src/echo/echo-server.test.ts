import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest, Agent } from 'node:http';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  maskedFrame, rawRequest, rawWebSocket, readFrame, readToEnd, SAMPLE_ACCEPT, waitForClose, wsHandshakeRequest,
} from '../../test/helpers/raw-client.js';
import { delay, once, waitFor, withTimeout } from '../../test/helpers/wait.js';
import { Opcode } from '../websocket/opcodes.js';
import type { EchoHttpReport } from './echo-http.js';
import { runEchoCommand, startEchoServer, type EchoServer } from './echo-server.js';

const WAIT = 5000;

async function withEcho(t: { after(fn: () => unknown): void }, id?: string): Promise<EchoServer> {
  const server = await startEchoServer(id === undefined ? {} : { id });
  t.after(() => server.close());
  return server;
}

async function openWs(url: string, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols);
  ws.on('error', () => undefined);
  await once(ws, 'open', WAIT);
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return once(ws, 'message', WAIT).then(([data, isBinary]) => ({ data: data as Buffer, isBinary: isBinary as boolean }));
}

async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close', WAIT).catch(() => ws.terminate());
  ws.close();
  await closed;
}

test('defaults: 127.0.0.1, a free port, id echo-PORT, ws:// url', async (t) => {
  const server = await withEcho(t);
  assert.equal(server.host, '127.0.0.1');
  assert.ok(server.port > 0);
  assert.equal(server.id, `echo-${server.port}`);
  assert.equal(server.url, `ws://127.0.0.1:${server.port}/`);
});

test('echoes text as text and binary as binary, and sends nothing on open', async (t) => {
  const server = await withEcho(t, 'e1');
  const ws = await openWs(server.url);
  t.after(() => ws.terminate());
  ws.send('hello é');
  const text = await nextMessage(ws);
  assert.equal(text.isBinary, false);
  assert.equal(text.data.toString('utf8'), 'hello é', 'the first message is the echo, not a greeting');
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  ws.send(bytes);
  const binary = await nextMessage(ws);
  assert.equal(binary.isBinary, true);
  assert.deepEqual(binary.data, bytes);
  ws.send('');
  assert.equal((await nextMessage(ws)).data.length, 0);
  await closeWs(ws);
});

test('echoes a 16 MiB binary message intact', async (t) => {
  const server = await withEcho(t);
  const ws = await openWs(server.url);
  t.after(() => ws.terminate());
  const big = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  ws.send(big);
  const echoed = await withTimeout(nextMessage(ws), 20000, 'the 16 MiB echo');
  assert.equal(echoed.isBinary, true);
  assert.equal(echoed.data.length, big.length);
  assert.ok(echoed.data.equals(big), '16 MiB payload differs');
  await closeWs(ws);
});

test('reassembles a fragmented message, with a ping between fragments', async (t) => {
  const server = await withEcho(t);
  const ws = await openWs(server.url);
  t.after(() => ws.terminate());
  const pong = once(ws, 'pong', WAIT);
  const message = nextMessage(ws);
  ws.send('frag-', { fin: false });
  ws.ping('mid');
  ws.send('ment-', { fin: false });
  ws.send('ed', { fin: true });
  const [pongData] = await pong;
  assert.equal((pongData as Buffer).toString(), 'mid');
  const echoed = await message;
  assert.equal(echoed.isBinary, false);
  assert.equal(echoed.data.toString(), 'frag-ment-ed');
  await closeWs(ws);
});

test('answers ping with a pong carrying the same payload', async (t) => {
  const server = await withEcho(t);
  const ws = await openWs(server.url);
  t.after(() => ws.terminate());
  const pong = once(ws, 'pong', WAIT);
  ws.ping(Buffer.from('are you there'));
  const [data] = await pong;
  assert.equal((data as Buffer).toString(), 'are you there');
  await closeWs(ws);
});

test('answers a close with the same code and reason, then closes TCP', async (t) => {
  const server = await withEcho(t);
  const ws = await openWs(server.url);
  t.after(() => ws.terminate());
  const closed = once(ws, 'close', WAIT);
  ws.close(4321, 'done here');
  const [code, reason] = await closed;
  assert.equal(code, 4321);
  assert.equal((reason as Buffer).toString(), 'done here');
});

test('selects the first offered subprotocol and never negotiates extensions', async (t) => {
  const server = await withEcho(t);
  const ws = await openWs(server.url, ['chat.v2', 'chat.v1']);
  t.after(() => ws.terminate());
  assert.equal(ws.protocol, 'chat.v2');
  assert.equal(ws.extensions, '');
  await closeWs(ws);
  const plain = await openWs(server.url);
  assert.equal(plain.protocol, '');
  await closeWs(plain);
});

test('/whoami and ?whoami send {"id"} right after the 101, in the same write', async (t) => {
  const server = await withEcho(t, 'backend-a');
  for (const path of ['/whoami', '/room/1?whoami', '/?x=1&whoami=yes']) {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
    ws.on('error', () => undefined);
    const message = nextMessage(ws);
    const first = await message;
    assert.equal(first.isBinary, false, path);
    assert.deepEqual(JSON.parse(first.data.toString()), { id: 'backend-a' }, path);
    await closeWs(ws);
  }
  // Raw: the message is already there with the head.
  const raw = await rawWebSocket(server.port, { path: '/whoami' });
  try {
    assert.equal(raw.head.statusCode, 101);
    assert.ok(raw.head.rest.length > 0, 'the message came with the 101');
    const frame = await readFrame(raw.socket, WAIT);
    assert.equal(frame.opcode, Opcode.TEXT);
    assert.equal(frame.masked, false);
    assert.equal(frame.payload.toString(), '{"id":"backend-a"}');
  } finally {
    raw.socket.destroy();
  }
});

test('a raw handshake gets an exact 101 and pipelined frames are echoed', async (t) => {
  const server = await withEcho(t, 'raw');
  const early = Buffer.concat([maskedFrame(Opcode.TEXT, 'early-1'), maskedFrame(Opcode.BINARY, 'early-2')]);
  const { socket, head } = await rawWebSocket(server.port, { earlyBytes: early, extraHeaders: [['Sec-WebSocket-Protocol', 'a, b']] });
  try {
    assert.equal(head.statusLine, 'HTTP/1.1 101 Switching Protocols');
    assert.deepEqual(head.headers, [
      ['Upgrade', 'websocket'],
      ['Connection', 'Upgrade'],
      ['Sec-WebSocket-Accept', SAMPLE_ACCEPT],
      ['Sec-WebSocket-Protocol', 'a'],
      ['X-Echo-Id', 'raw'],
    ]);
    const one = await readFrame(socket, WAIT);
    const two = await readFrame(socket, WAIT);
    assert.deepEqual([one.opcode, one.payload.toString()], [Opcode.TEXT, 'early-1']);
    assert.deepEqual([two.opcode, two.payload.toString()], [Opcode.BINARY, 'early-2']);
  } finally {
    socket.destroy();
  }
});

test('protocol errors get the matching close code and the connection ends', async (t) => {
  const server = await withEcho(t);
  const cases: [string, Buffer, number][] = [
    ['unmasked client frame', Buffer.from([0x81, 0x01, 0x61]), 1002],
    ['reserved opcode', maskedFrame(0x3, 'x'), 1002],
    ['RSV1 without an extension', maskedFrame(Opcode.TEXT, 'x', { rsv: 0b100 }), 1002],
    ['invalid UTF-8 text', maskedFrame(Opcode.TEXT, Buffer.from([0xff, 0xfe])), 1007],
    ['continuation without a start', maskedFrame(Opcode.CONTINUATION, 'x'), 1002],
    ['close with code 1005', maskedFrame(Opcode.CLOSE, Buffer.from([0x03, 0xed])), 1002],
  ];
  for (const [what, bytes, code] of cases) {
    const { socket } = await rawWebSocket(server.port, { earlyBytes: bytes });
    try {
      const frame = await readFrame(socket, WAIT);
      assert.equal(frame.opcode, Opcode.CLOSE, what);
      assert.equal(frame.payload.readUInt16BE(0), code, what);
      await readToEnd(socket, WAIT);
    } finally {
      socket.destroy();
    }
  }
});

test('a client that stops reading gets every echo, in order, once it reads again', async (t) => {
  const server = await withEcho(t);
  const { socket, head } = await rawWebSocket(server.port);
  try {
    assert.equal(head.statusCode, 101);
    socket.pause();
    const count = 160;
    for (let i = 0; i < count; i++) {
      const payload = Buffer.alloc(64 * 1024, i & 0xff);
      payload.writeUInt32BE(i, 0);
      socket.write(maskedFrame(Opcode.BINARY, payload));
    }
    await delay(100);
    socket.resume();
    for (let i = 0; i < count; i++) {
      const frame = await readFrame(socket, WAIT);
      assert.equal(frame.payload.length, 64 * 1024);
      assert.equal(frame.payload.readUInt32BE(0), i);
      assert.equal(frame.payload[frame.payload.length - 1], i & 0xff);
    }
  } finally {
    socket.destroy();
  }
});

test('a half-closed client still gets its echoes, then the server ends too', async (t) => {
  const server = await withEcho(t);
  const { socket, head } = await rawWebSocket(server.port);
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  socket.end(maskedFrame(Opcode.TEXT, 'last words'));
  const frame = await readFrame(socket, WAIT);
  assert.equal(frame.payload.toString(), 'last words');
  await readToEnd(socket, WAIT);
  await waitForClose(socket, WAIT);
});

test('a reset mid-frame does not disturb the server', async (t) => {
  const server = await withEcho(t);
  const { socket } = await rawWebSocket(server.port);
  socket.write(maskedFrame(Opcode.BINARY, Buffer.alloc(1000)).subarray(0, 500));
  socket.resetAndDestroy();
  await waitForClose(socket, WAIT);
  const ws = await openWs(server.url);
  ws.send('still here');
  assert.equal((await nextMessage(ws)).data.toString(), 'still here');
  await closeWs(ws);
});

test('refuses a bad upgrade with 400 and a short text', async (t) => {
  const server = await withEcho(t);
  const bad: [string, string][] = [
    ['no key', wsHandshakeRequest({ omit: ['Sec-WebSocket-Key'] })],
    ['bad key', wsHandshakeRequest({ key: 'not-a-key' })],
    ['version 8', wsHandshakeRequest({ version: '8' })],
    ['POST', wsHandshakeRequest({ method: 'POST' })],
    ['Upgrade: h2c', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'],
  ];
  for (const [what, request] of bad) {
    const res = await rawRequest(server.port, request);
    assert.equal(res.head?.statusCode, 400, what);
    assert.match(res.head?.headers.find(([n]) => n === 'Content-Type')?.[1] ?? '', /^text\/plain/, what);
    assert.ok(res.body.length > 0 && res.body.length < 200, `${what}: short body`);
  }
  const version = await rawRequest(server.port, wsHandshakeRequest({ version: '8' }));
  assert.ok(version.head?.headers.some(([n, v]) => n === 'Sec-WebSocket-Version' && v === '13'));
});

test('HTTP: 200 JSON describing the request, repeated headers as arrays, body capped', async (t) => {
  const server = await withEcho(t, 'http-1');
  const body = 'name=sluice&x=é';
  const request = 'POST /path/a%20b?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Multi: one\r\nX-Multi: two\r\n' +
    `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const res = await rawRequest(server.port, Buffer.from(request, 'utf8'));
  assert.equal(res.head?.statusCode, 200);
  assert.ok(res.head?.headers.some(([n, v]) => n.toLowerCase() === 'content-type' && v === 'application/json'));
  assert.ok(res.head?.headers.some(([n, v]) => n === 'X-Echo-Id' && v === 'http-1'));
  const report = JSON.parse(res.body.toString('utf8')) as EchoHttpReport;
  assert.equal(report.id, 'http-1');
  assert.equal(report.method, 'POST');
  assert.equal(report.url, '/path/a%20b?q=1');
  assert.equal(report.httpVersion, '1.1');
  assert.equal(report.headers['host'], 'example.test');
  assert.deepEqual(report.headers['x-multi'], ['one', 'two']);
  assert.deepEqual(report.rawHeaders.slice(0, 6), ['Host', 'example.test', 'X-Multi', 'one', 'X-Multi', 'two']);
  assert.equal(report.remoteAddress, '127.0.0.1');
  assert.equal(typeof report.remotePort, 'number');
  assert.equal(report.body, body);

  const big = Buffer.alloc(1024 * 1024 + 10, 'a');
  const bigRes = await rawRequest(server.port, Buffer.concat([
    Buffer.from(`PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`), big,
  ]));
  const bigReport = JSON.parse(bigRes.body.toString()) as EchoHttpReport;
  assert.equal(bigReport.body.length, 1024 * 1024);
  assert.equal(bigReport.bodyBytes, big.length);
});

test('HTTP keep-alive: several requests share one connection', async (t) => {
  const server = await withEcho(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path: string): Promise<EchoHttpReport> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as EchoHttpReport));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  const first = await withTimeout(get('/one'), WAIT, 'first response');
  const second = await withTimeout(get('/two'), WAIT, 'second response');
  assert.equal(first.url, '/one');
  assert.equal(second.url, '/two');
  assert.equal(first.remotePort, second.remotePort);
});

test('close() sends 1001 to open sessions, is idempotent, and frees the port', async () => {
  const server = await startEchoServer();
  const ws = await openWs(server.url);
  const closed = once(ws, 'close', WAIT);
  const a = server.close();
  const b = server.close();
  assert.equal(a, b);
  const [code] = await closed;
  assert.equal(code, 1001);
  await withTimeout(a, WAIT, 'server close');
  await assert.rejects(rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 1000 }));
});

test('close() destroys sessions whose client never answers the close', async () => {
  const server = await startEchoServer();
  const { socket } = await rawWebSocket(server.port);
  const started = Date.now();
  await withTimeout(server.close(), WAIT, 'server close');
  await waitForClose(socket, WAIT);
  assert.ok(Date.now() - started < 4000);
  socket.destroy();
});

test('runEchoCommand: prints the listening line, serves, stops on abort', async () => {
  const lines: string[] = [];
  const controller = new AbortController();
  const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
  const running = runEchoCommand(['--port', '0', '--id=cli-echo', '--host', '127.0.0.1'], {
    stdout: { write: (s: string) => lines.push(s) },
    signal: controller.signal,
  });
  const line = await waitFor(() => lines[0], { what: 'the listening line' });
  const match = /^sluice echo: cli-echo listening on ws:\/\/127\.0\.0\.1:(\d+)\/ \(HTTP too\)\n$/.exec(line);
  assert.ok(match, line);
  assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], [before[0]! + 1, before[1]! + 1]);
  const res = await rawRequest(Number(match[1]), 'GET /hi HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((JSON.parse(res.body.toString()) as EchoHttpReport).id, 'cli-echo');
  controller.abort();
  await withTimeout(running, WAIT, 'the command to stop');
  assert.deepEqual([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')], before);
});

test('runEchoCommand: -h prints usage; bad arguments reject with the usage', async () => {
  let out = '';
  await runEchoCommand(['-h'], { stdout: { write: (s: string) => { out += s; } } });
  assert.match(out, /^usage: sluice echo/);
  await assert.rejects(runEchoCommand(['--bogus']), /unknown argument "--bogus"[\s\S]*usage:/);
  await assert.rejects(runEchoCommand(['--port']), /--port needs a value/);
  await assert.rejects(runEchoCommand(['--port', 'http']), /--port must be a number/);
});

test('runEchoCommand in a child process stops on SIGTERM and the process exits by itself', async () => {
  const module = fileURLToPath(new URL('./echo-server.js', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then((m) => m.runEchoCommand(['--id', 'child']))`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    let err = '';
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const line = await waitFor(() => (out.includes('\n') ? out : ''), { what: "the child's listening line" });
    const port = Number(/:(\d+)\//.exec(line)?.[1]);
    const ws = await openWs(`ws://127.0.0.1:${port}/`);
    const wsClosed = once(ws, 'close', WAIT);
    const exited = once(child, 'exit', WAIT);
    child.kill('SIGTERM');
    const [[code]] = await Promise.all([exited, wsClosed.then(([c]) => assert.equal(c, 1001))]);
    assert.equal(code, 0, `exit code (stderr: ${err})`);
  } finally {
    child.kill('SIGKILL');
  }
});
