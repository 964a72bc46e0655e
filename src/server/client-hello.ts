/**
 * The parts of a TLS ClientHello (RFC 8446 4.1.2) the session cache needs, read from the first
 * record before Node.js sees it: the legacy session id (what Node.js's 'resumeSession' event
 * names) and the PSK identities of a TLS 1.3 resumption. With `ssl_session_tickets off` OpenSSL
 * gives TLS 1.3 clients stateful tickets whose identity is the session id, but Node.js only ever
 * asks for the legacy session id, which TLS 1.3 clients fill with random bytes: the identities
 * read here let the cache answer with the session the client really offers (nginx gets them from
 * OpenSSL's own lookup).
 */

/** TLS record header (5) + the largest plaintext record (2^14). */
export const MAX_HELLO_RECORD = 5 + 16384;

/** ContentType handshake (22). */
const HANDSHAKE = 0x16;
/** HandshakeType client_hello (1). */
const CLIENT_HELLO = 1;
/** ExtensionType pre_shared_key (41). */
const PRE_SHARED_KEY = 41;

/** Bytes the first record needs in all (header included), or null when it is not a handshake record. */
export function helloRecordLength(buf: Buffer): number | null {
  if (buf.length < 5 || buf[0] !== HANDSHAKE) return null;
  return 5 + buf.readUInt16BE(3);
}

export interface HelloIds {
  readonly sessionId: Buffer;
  readonly pskIdentities: readonly Buffer[];
}

/** The session id and PSK identities of a complete first record; null when it is not a readable ClientHello. */
export function helloIds(buf: Buffer): HelloIds | null {
  const end = helloRecordLength(buf);
  if (end === null || buf.length < end || buf[5] !== CLIENT_HELLO) return null;
  try {
    // record header 5, handshake header 4, legacy_version 2, random 32
    let p = 5 + 4 + 2 + 32;
    const sidLen = buf[p]!;
    const sessionId = buf.subarray(p + 1, p + 1 + sidLen);
    p += 1 + sidLen;
    p += 2 + buf.readUInt16BE(p); // cipher_suites
    p += 1 + buf[p]!; // legacy_compression_methods
    if (p + 2 > end) return { sessionId, pskIdentities: [] };
    const extEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = buf.readUInt16BE(p);
      const len = buf.readUInt16BE(p + 2);
      p += 4;
      if (type === PRE_SHARED_KEY) {
        const ids: Buffer[] = [];
        const idsEnd = p + 2 + buf.readUInt16BE(p);
        // PskIdentity: opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age
        for (let q = p + 2; q + 2 <= idsEnd;) {
          const l = buf.readUInt16BE(q);
          if (q + 2 + l > idsEnd) break;
          ids.push(buf.subarray(q + 2, q + 2 + l));
          q += 2 + l + 4;
        }
        return { sessionId, pskIdentities: ids };
      }
      p += len;
    }
    return { sessionId, pskIdentities: [] };
  } catch {
    return null;
  }
}
