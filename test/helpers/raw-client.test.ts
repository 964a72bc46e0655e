import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startRawBackend } from './backends.js';
import { recorderFor } from './byte-recorder.js';
import {
  completeResponse, decodeChunked, frameLength, headerValue, headerValues, maskedFrame, parseResponseHead, rawConnect,
  rawRequest, rawWebSocket, readFrame, readToEnd, readUntil, SAMPLE_ACCEPT, SAMPLE_KEY, serverFrame, waitForClose,
  wsHandshakeRequest,
} from './raw-client.js';

test('rawRequest writes the exact bytes and reads one Content-Length response', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello');
  });
  t.after(() => backend.close());
  const request = 'GET /a%2Fb?x=%20 HTTP/1.1\r\nHost: h\r\nX-Weird:  spaced \r\n\r\n';
  const res = await rawRequest(backend.port, request);
  assert.equal(res.head?.statusCode, 200);
  assert.equal(res.head?.statusLine, 'HTTP/1.1 200 OK');
  assert.deepEqual(headerValues(res.head!, 'x-a'), ['1', '2']);
  assert.equal(headerValue(res.head!, 'X-A'), '1, 2');
  assert.equal(res.body.toString(), 'hello');
  assert.equal(res.closed, false, 'the server kept the connection open');
  assert.equal(res.socket.destroyed, true, 'rawRequest destroys its socket');
  const conn = await backend.nextConnection();
  assert.equal(conn.received.toString('latin1'), request);
});

test('rawRequest handles chunked bodies, close-delimited bodies and early closes', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString();
    if (head.startsWith('GET /chunked')) {
      conn.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      setTimeout(() => conn.socket.write('2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n'), 20);
    } else if (head.startsWith('GET /eof')) {
      conn.socket.end('HTTP/1.0 200 OK\r\n\r\nuntil the end');
    } else {
      conn.socket.destroy();
    }
  });
  t.after(() => backend.close());
  const chunked = await rawRequest(backend.port, 'GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal(chunked.body.toString(), 'abcde');
  const eof = await rawRequest(backend.port, 'GET /eof HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal(eof.closed, true);
  assert.equal(eof.body.toString(), 'until the end');
  const reset = await rawRequest(backend.port, 'GET /reset HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal(reset.closed, true);
  assert.equal(reset.head, null);
  assert.equal(reset.data.length, 0);
});

test('rawRequest times out instead of hanging on a silent server', async (t) => {
  const backend = await startRawBackend();
  t.after(() => backend.close());
  const started = Date.now();
  await assert.rejects(rawRequest(backend.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', { timeoutMs: 200 }), /timed out after 200 ms/);
  assert.ok(Date.now() - started < 2000);
});

test('endAfterWrite half-closes; the backend sees FIN and can still answer', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    const all = await conn.readToEnd();
    assert.equal(conn.ended, true);
    conn.socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${all.length}\r\n\r\n${all.toString('latin1')}`);
  });
  t.after(() => backend.close());
  const res = await rawRequest(backend.port, 'PING', { endAfterWrite: true, until: 'close' });
  assert.equal(res.body.toString(), 'PING');
});

test('readUntil keeps bytes that arrive before it is called and consumes what it returns', async (t) => {
  const backend = await startRawBackend((conn) => { conn.socket.write('first|second|'); });
  t.after(() => backend.close());
  const socket = await rawConnect(backend.port);
  t.after(() => socket.destroy());
  await backend.nextConnection();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal((await readUntil(socket, 'first|', 1000)).toString(), 'first|second|');
  const conn = backend.connections[0]!;
  conn.socket.write('third');
  assert.equal((await readUntil(socket, (b) => b.length >= 5, 1000)).toString(), 'third');
  await assert.rejects(readUntil(socket, 'never', 100), /timed out after 100 ms waiting for "never"; unread bytes: ""/);
  conn.socket.end('tail');
  await assert.rejects(readUntil(socket, 'never', 1000), /closed before "never" arrived; unread bytes: "tail"/);
});

test('parseResponseHead splits status line, headers in order, and rest', () => {
  const head = parseResponseHead(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n\x81\x00', 'latin1'));
  assert.equal(head.statusCode, 101);
  assert.equal(head.reason, 'Switching Protocols');
  assert.equal(head.httpVersion, 'HTTP/1.1');
  assert.deepEqual(head.headers, [['Upgrade', 'websocket'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]);
  assert.deepEqual([...head.rest], [0x81, 0x00]);
  assert.throws(() => parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n')), /no complete response head/);
  assert.throws(() => parseResponseHead(Buffer.from('SSH-2.0\r\n\r\n')), /not an HTTP status line/);
});

test('completeResponse and decodeChunked know where a response ends', () => {
  const interim = Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nnext');
  assert.equal(completeResponse(interim)?.head.statusCode, 204);
  assert.equal(completeResponse(interim)?.length, interim.length - 4);
  assert.equal(completeResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabc')), null);
  assert.equal(completeResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n'), 'HEAD')?.body.length, 0);
  assert.equal(completeResponse(Buffer.from('HTTP/1.1 200 OK\r\n\r\nbody')), null, 'close-delimited');
  assert.equal(decodeChunked(Buffer.from('5\r\nhel')), null);
  assert.equal(decodeChunked(Buffer.from('3\r\nabc\r\n0\r\n\r\n'))?.body.toString(), 'abc');
});

test('wsHandshakeRequest builds the exact request text', () => {
  assert.equal(
    wsHandshakeRequest({ path: '/chat?room=1', host: 'example.test', extraHeaders: [['Origin', 'http://o'], ['Sec-WebSocket-Protocol', 'chat']] }),
    'GET /chat?room=1 HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://o\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
  );
  assert.equal(
    wsHandshakeRequest({ omit: ['sec-websocket-key', 'Sec-WebSocket-Version'], method: 'POST', extraHeaders: { 'X-A': 'b' } }),
    'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-A: b\r\n\r\n',
  );
  assert.equal(SAMPLE_ACCEPT, acceptKey(SAMPLE_KEY));
});

test('maskedFrame, serverFrame and frameLength agree with the codec', () => {
  const masked = maskedFrame(Opcode.TEXT, 'hi', { maskKey: Buffer.from([1, 2, 3, 4]), fin: false });
  assert.equal(masked.toString('hex'), '018201020304696b');
  assert.equal(serverFrame(Opcode.BINARY, 'hi').toString('hex'), '82026869');
  assert.equal(frameLength(masked), masked.length);
  assert.equal(frameLength(masked.subarray(0, 7)), null);
  assert.equal(frameLength(serverFrame(Opcode.BINARY, Buffer.alloc(70000))), 70010);
});

test('rawWebSocket + readFrame against a raw backend speaking frames by hand', async (t) => {
  const backend = await startRawBackend(async (conn) => {
    const request = await conn.readUntil((b) => b.includes('\r\n\r\n') && frameLength(b.subarray(b.indexOf('\r\n\r\n') + 4)) !== null);
    const headEnd = request.indexOf('\r\n\r\n') + 4;
    const key = /Sec-WebSocket-Key: (\S+)/.exec(request.subarray(0, headEnd).toString())?.[1] ?? '';
    // The 101 and a frame in one write, as a fast server does.
    conn.socket.write(Buffer.concat([
      Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`),
      serverFrame(Opcode.TEXT, 'greeting'),
      serverFrame(Opcode.BINARY, request.subarray(headEnd)), // the early client frame, raw
    ]));
  });
  t.after(() => backend.close());
  const early = maskedFrame(Opcode.TEXT, 'early');
  const { socket, head } = await rawWebSocket(backend.port, { earlyBytes: early });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  assert.equal(headerValue(head, 'sec-websocket-accept'), SAMPLE_ACCEPT);
  const greeting = await readFrame(socket);
  assert.equal(greeting.payload.toString(), 'greeting');
  const echoed = await readFrame(socket);
  assert.deepEqual(echoed.payload, early, 'the backend received the pipelined frame byte for byte');
  await assert.rejects(readFrame(socket, 100), /no complete frame: timed out/);
  // The backend allows half-open connections: our FIN reaches it and its side stays writable.
  socket.end();
  const conn = backend.connections[0]!;
  await conn.readToEnd(2000);
  conn.socket.end();
  await waitForClose(socket, 2000);
});

test('startRawBackend: close() destroys open sockets and reports handler failures', async () => {
  const backend = await startRawBackend((conn) => {
    if (conn.received.length === 0 && backend.connections.length === 2) throw new Error('handler assertion failed');
  });
  const a = await rawConnect(backend.port);
  const b = await rawConnect(backend.port);
  await backend.nextConnection();
  await backend.nextConnection();
  assert.equal(backend.errors.length, 1);
  await waitForClose(b, 2000);
  assert.equal(backend.openSockets(), 1);
  await assert.rejects(backend.close(), /handler assertion failed/);
  await waitForClose(a, 2000);
  assert.equal(recorderFor(a).closed, true);
  await assert.rejects(rawConnect(backend.port, { timeoutMs: 1000 }));
  await readToEnd(a, 100);
});
