/**
 * XORs `data` in place with the 4-byte masking key (RFC 6455 section 5.3). Masking and unmasking
 * are the same operation.
 */
export function applyMask(data: Buffer, maskKey: Buffer): void {
  const m0 = maskKey[0];
  const m1 = maskKey[1];
  const m2 = maskKey[2];
  const m3 = maskKey[3];
  if (m0 === undefined || m1 === undefined || m2 === undefined || m3 === undefined) {
    throw new RangeError(`a masking key is 4 bytes, got ${maskKey.length}`);
  }
  const length = data.length;
  let i = 0;
  for (; i + 3 < length; i += 4) {
    data[i] ^= m0;
    data[i + 1] ^= m1;
    data[i + 2] ^= m2;
    data[i + 3] ^= m3;
  }
  for (; i < length; i++) data[i] ^= maskKey[i & 3] ?? 0;
}
