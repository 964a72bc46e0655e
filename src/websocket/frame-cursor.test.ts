import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameCursor } from './frame-cursor.js';
import { encodeFrame } from './frame-writer.js';
import { Opcode } from './opcodes.js';

function frames(): Buffer[] {
  return [
    encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.from('hi') }),
    encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(300, 7), mask: true }),
    encodeFrame({ opcode: Opcode.PING, payload: Buffer.alloc(0) }),
    encodeFrame({ opcode: Opcode.BINARY, payload: Buffer.alloc(70_000, 1) }),
    encodeFrame({ opcode: Opcode.TEXT, payload: Buffer.alloc(125, 0x61), mask: true }),
  ];
}

test('the cursor is at a boundary exactly between frames, whatever the chunking', () => {
  const all = frames();
  const stream = Buffer.concat(all);
  const boundaries = new Set<number>([0]);
  let off = 0;
  for (const f of all) boundaries.add((off += f.length));
  for (const size of [1, 2, 3, 7, 13, 64, 1000, stream.length]) {
    const c = new FrameCursor();
    for (let i = 0; i < stream.length; i += size) {
      const chunk = stream.subarray(i, Math.min(stream.length, i + size));
      c.advance(chunk);
      const end = Math.min(stream.length, i + size);
      assert.equal(c.atBoundary, boundaries.has(end), `size ${size} at ${end}`);
    }
  }
});

test('advanceToBoundary stops at the end of the current frame', () => {
  const all = frames();
  const stream = Buffer.concat(all);
  const c = new FrameCursor();
  c.advance(stream.subarray(0, 5)); // inside the second frame's header
  assert.equal(c.atBoundary, false);
  const rest = stream.subarray(5);
  const cut = c.advanceToBoundary(rest);
  assert.equal(5 + cut, all[0]!.length + all[1]!.length);
  assert.equal(c.atBoundary, true);
  assert.equal(c.advanceToBoundary(rest.subarray(cut)), 0);
  const big = new FrameCursor();
  big.advance(all[3]!.subarray(0, 100));
  assert.equal(big.advanceToBoundary(all[3]!.subarray(100, 200)), -1);
  assert.equal(big.advanceToBoundary(all[3]!.subarray(200)), all[3]!.length - 200);
});

test('closeSeen: set by the header of a close frame, also split across chunks, not by other frames', () => {
  const text = Buffer.from([0x81, 0x02, 0x68, 0x69]);
  const close = Buffer.from([0x88, 0x02, 0x03, 0xe8]);
  const c = new FrameCursor();
  c.advance(text);
  assert.equal(c.closeSeen, false);
  // A payload byte that looks like a close opcode is skipped, not read as a header.
  c.advance(Buffer.from([0x82, 0x01, 0x88]));
  assert.equal(c.closeSeen, false);
  c.advance(close.subarray(0, 1));
  assert.equal(c.closeSeen, true);
  c.advance(close.subarray(1));
  assert.equal(c.atBoundary, true);
});
