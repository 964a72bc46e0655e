import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeClose, encodeFrame } from './frame-writer.js';
import { FrameGuard } from './frame-guard.js';
import { Opcode } from './opcodes.js';

const NO_LIMITS = { maxFrame: 0, maxMessage: 0 };

function stream(): Buffer {
  return Buffer.concat([
    encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.from('hi'), mask: true }),
    encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(300, 7), fin: false }),
    encodeFrame({ opcode: Opcode.PING, payload: Buffer.from('p'), mask: true }),
    encodeFrame({ opcode: Opcode.CONTINUATION, payload: Buffer.alloc(70_000, 1) }),
    encodeClose(4321, 'bye', true),
    encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.from('after') }),
  ]);
}

test('whatever the chunking, every byte passes in order, and messages and the first close code are seen', () => {
  const all = stream();
  for (const size of [1, 2, 3, 5, 13, 1000, all.length]) {
    const g = new FrameGuard(NO_LIMITS);
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i += size) out.push(g.feed(all.subarray(i, i + size)));
    assert.ok(Buffer.concat(out).equals(all), `chunks of ${size}`);
    assert.equal(g.messages, 3, 'text, the fragmented binary, text');
    assert.equal(g.closeCode, 4321, 'unmasked from the close frame');
    assert.ok(g.closeSeen && g.atBoundary && g.violation === null);
  }
});

test('with guardrails, a header cut across chunks is held back until it is whole', () => {
  const g = new FrameGuard(NO_LIMITS, true);
  const frame = encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(70_000), mask: true });
  assert.equal(g.feed(frame.subarray(0, 9)).length, 0, 'nine of fourteen header bytes: nothing passes');
  assert.equal(g.feed(frame.subarray(9, 20)).length, 20, 'the whole header and what follows');
  assert.equal(g.atBoundary, false);
});

test('a frame over max_frame, or a message over max_message with its earlier fragments, is refused at its header', () => {
  const small = encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.alloc(100) });
  const big = encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(101) });
  const g = new FrameGuard({ maxFrame: 100, maxMessage: 0 });
  assert.ok(g.feed(Buffer.concat([small, big])).equals(small), 'the frame before passes');
  assert.deepEqual([g.violation, g.violationSize], ['frame', 101]);
  assert.equal(g.feed(small).length, 0, 'nothing passes after a violation');

  const m = new FrameGuard({ maxFrame: 0, maxMessage: 150 });
  const first = encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.alloc(100), fin: false });
  const ping = encodeFrame({ opcode: Opcode.PING, payload: Buffer.alloc(100) });
  const last = encodeFrame({ opcode: Opcode.CONTINUATION, payload: Buffer.alloc(51) });
  assert.ok(m.feed(Buffer.concat([first, ping, last])).equals(Buffer.concat([first, ping])), 'control frames count for no message');
  assert.deepEqual([m.violation, m.violationSize], ['message', 151]);
});

test('a close frame without a code is 1005; going away drops held header bytes', () => {
  const g = new FrameGuard(NO_LIMITS);
  g.feed(encodeFrame({ opcode: Opcode.CLOSE, payload: Buffer.alloc(0) }));
  assert.equal(g.closeCode, 1005);
  const h = new FrameGuard(NO_LIMITS, true);
  assert.equal(h.feed(Buffer.from([0x82])).length, 0);
  assert.equal(h.advanceToBoundary(Buffer.from([0x05, 1, 2, 3, 4, 5])), 0, 'at a boundary: the held byte never passed');
});

test('a pong carrying the token of Sluice\'s ping is taken out, once, whatever the chunking; other pongs pass', () => {
  const token = Buffer.from('12345678');
  const other = encodeFrame({ opcode: Opcode.PONG, payload: Buffer.from('abcdefgh'), mask: true });
  const ours = encodeFrame({ opcode: Opcode.PONG, payload: token, mask: true });
  const text = encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.from('hi'), mask: true });
  const all = Buffer.concat([text, other, ours, text, ours]);
  for (const size of [1, 3, 7, all.length]) {
    const g = new FrameGuard(NO_LIMITS, true);
    g.pongToken = token;
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i += size) out.push(g.feed(all.subarray(i, i + size)));
    assert.ok(Buffer.concat(out).equals(Buffer.concat([text, other, text, ours])), `chunks of ${size}: the first matching pong only`);
    assert.equal(g.pongs, 1);
    assert.equal(g.pongToken, null);
  }
});

test('without guardrails every byte passes as it comes, a cut header too, and going away still finds the boundary', () => {
  const frames = stream();
  for (const size of [1, 2, 3, 5, 13]) {
    const g = new FrameGuard(NO_LIMITS, false);
    const out: Buffer[] = [];
    for (let i = 0; i < frames.length; i += size) {
      const piece = frames.subarray(i, i + size);
      const passed = g.feed(piece);
      assert.ok(passed.equals(piece), `chunks of ${size}: passed as they came`);
      out.push(passed);
    }
    assert.equal(g.messages, 3);
    assert.equal(g.closeCode, 4321);
  }
  const g = new FrameGuard(NO_LIMITS, false);
  const big = encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(300), mask: true });
  assert.equal(g.feed(big.subarray(0, 3)).length, 3, 'a cut header passes');
  assert.equal(g.atBoundary, false, 'but it is not a boundary');
  assert.equal(g.advanceToBoundary(big.subarray(3, 100)), -1);
  assert.equal(g.advanceToBoundary(big.subarray(100)), big.length - 100, 'the frame ends where its header said');
  const raw = Buffer.from('not a websocket stream at all \x00\xff');
  assert.ok(new FrameGuard(NO_LIMITS, false).feed(raw).equals(raw));
});
