/**
 * WebSocket frame opcodes (RFC 6455 section 5.2). 0x3-0x7 and 0xB-0xF are reserved; a frame that
 * uses one must fail the connection (section 5.2, "MUST _Fail the WebSocket Connection_").
 */
export const Opcode = Object.freeze({
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const);

/** One of the six opcodes RFC 6455 defines. */
export type KnownOpcode = (typeof Opcode)[keyof typeof Opcode];

/** Control frames have the high bit of the opcode set (RFC 6455 section 5.5). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** True for the opcodes RFC 6455 defines; false for the reserved ones. */
export function isKnownOpcode(opcode: number): opcode is KnownOpcode {
  return opcode === 0x0 || opcode === 0x1 || opcode === 0x2 ||
    opcode === 0x8 || opcode === 0x9 || opcode === 0xa;
}

/** Human name of an opcode, for log lines and assertion messages. */
export function opcodeName(opcode: number): string {
  switch (opcode) {
    case 0x0: return 'continuation';
    case 0x1: return 'text';
    case 0x2: return 'binary';
    case 0x8: return 'close';
    case 0x9: return 'ping';
    case 0xa: return 'pong';
    default: return `reserved(0x${opcode.toString(16)})`;
  }
}
