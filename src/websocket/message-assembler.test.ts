import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameParser, type Frame } from './frame-parser.js';
import { encodeFrame } from './frame-writer.js';
import { DEFAULT_MAX_MESSAGE_SIZE, MessageAssembler, type Message } from './message-assembler.js';
import { Opcode } from './opcodes.js';

function frame(opcode: number, payload: string | Buffer, fin = true, rsv = 0): Frame {
  return { kind: 'frame', fin, rsv, opcode, masked: false, payload: Buffer.from(payload) };
}

test('a single-frame message passes straight through', () => {
  const assembler = new MessageAssembler();
  assert.equal(assembler.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE);
  const message = assembler.push(frame(Opcode.BINARY, 'abc')) as Message;
  assert.equal(message.kind, 'message');
  assert.equal(message.opcode, Opcode.BINARY);
  assert.equal(message.data.toString(), 'abc');
  assert.equal(message.frames, 1);
});

test('reassembles a fragmented text message with control frames in between', () => {
  const assembler = new MessageAssembler();
  const ping = frame(Opcode.PING, 'p');
  assert.equal(assembler.push(frame(Opcode.TEXT, 'hé'.slice(0, 1), false, 0b100)), null);
  assert.equal(assembler.inMessage, true);
  assert.equal(assembler.push(ping), ping, 'a control frame comes back at once');
  assert.equal(assembler.push(frame(Opcode.CONTINUATION, Buffer.from('é').subarray(0, 1), false)), null);
  assert.equal(assembler.push(frame(Opcode.PONG, ''))?.kind, 'frame');
  const message = assembler.push(frame(Opcode.CONTINUATION, Buffer.concat([Buffer.from('é').subarray(1), Buffer.from('!')]))) as Message;
  assert.equal(message.kind, 'message');
  assert.equal(message.opcode, Opcode.TEXT);
  assert.equal(message.rsv, 0b100);
  assert.equal(message.frames, 3);
  assert.equal(message.data.toString('utf8'), 'hé!');
  assert.equal(assembler.inMessage, false);
  // The next message starts clean.
  assert.equal((assembler.push(frame(Opcode.BINARY, 'x')) as Message).data.toString(), 'x');
});

test('works from parsed wire bytes, including empty fragments', () => {
  const bytes = Buffer.concat([
    encodeFrame({ fin: false, opcode: Opcode.BINARY, payload: Buffer.alloc(0), mask: true }),
    encodeFrame({ fin: false, opcode: Opcode.CONTINUATION, payload: Buffer.alloc(70000, 1), mask: true }),
    encodeFrame({ opcode: Opcode.CLOSE, payload: Buffer.from([3, 232]), mask: true }),
    encodeFrame({ opcode: Opcode.CONTINUATION, payload: Buffer.alloc(5, 2), mask: true }),
  ]);
  const parser = new FrameParser({ expectMasked: true });
  const assembler = new MessageAssembler();
  const out = parser.feed(bytes).map((f) => (f.kind === 'frame' ? assembler.push(f) : f));
  assert.equal(out[0], null);
  assert.equal(out[1], null);
  assert.equal(out[2]?.kind, 'frame');
  const message = out[3] as Message;
  assert.equal(message.data.length, 70005);
  assert.equal(message.data[69999], 1);
  assert.equal(message.data[70000], 2);
});

test('fragmentation errors are 1002, then the assembler ignores everything', () => {
  const a = new MessageAssembler();
  const error = a.push(frame(Opcode.CONTINUATION, 'x'));
  assert.equal(error?.kind, 'error');
  assert.equal(error?.kind === 'error' && error.closeCode, 1002);
  assert.equal(a.push(frame(Opcode.TEXT, 'fine')), null);

  const b = new MessageAssembler();
  assert.equal(b.push(frame(Opcode.TEXT, 'start', false)), null);
  const interleaved = b.push(frame(Opcode.BINARY, 'new'));
  assert.equal(interleaved?.kind === 'error' && interleaved.closeCode, 1002);
});

test('a message over maxMessageSize is 1009, whether in one frame or many', () => {
  const one = new MessageAssembler({ maxMessageSize: 10 });
  assert.equal(one.push(frame(Opcode.BINARY, Buffer.alloc(10)))?.kind, 'message');
  const big = one.push(frame(Opcode.BINARY, Buffer.alloc(11)));
  assert.equal(big?.kind === 'error' && big.closeCode, 1009);

  const many = new MessageAssembler({ maxMessageSize: 10 });
  assert.equal(many.push(frame(Opcode.BINARY, Buffer.alloc(6), false)), null);
  const over = many.push(frame(Opcode.CONTINUATION, Buffer.alloc(6), false));
  assert.equal(over?.kind === 'error' && over.closeCode, 1009);
});

test('invalid UTF-8 text is 1007 unless validation is off; binary is never checked', () => {
  const bad = Buffer.from([0x61, 0xff, 0x62]);
  const result = new MessageAssembler().push(frame(Opcode.TEXT, bad));
  assert.equal(result?.kind === 'error' && result.closeCode, 1007);
  assert.equal(new MessageAssembler().push(frame(Opcode.BINARY, bad))?.kind, 'message');
  assert.equal(new MessageAssembler({ validateUtf8: false }).push(frame(Opcode.TEXT, bad))?.kind, 'message');
  const truncated = new MessageAssembler().push(frame(Opcode.TEXT, Buffer.from('é').subarray(0, 1)));
  assert.equal(truncated?.kind === 'error' && truncated.closeCode, 1007);
});
