/**
 * The session side of `ssl_*` read at load: `ssl_session_ticket_key` files (nginx's format,
 * turned into the 48-byte key Node.js takes) and the session id context that keeps a session
 * from resuming on a server with other certificates.
 */
import { createHash, hkdfSync } from 'node:crypto';
import type { BuildContext } from './build-context.js';
import { openFailedMessage } from './include.js';
import type { ConfigFileRef, LoadedCertificate } from './types.js';
import { PATH_HINT, problemOnce, readText } from './tls-files.js';

/**
 * nginx's key file: 48 bytes (name 16, HMAC secret 16, AES-128 key 16: exactly Node.js's
 * `ticketKeys` layout), or 80 bytes (name 16, HMAC secret 32, AES-256 key 32). Node.js encrypts
 * tickets with AES-128 only, so an 80-byte key keeps its name and has each secret reduced to 16
 * bytes with HKDF-SHA256: every Sluice reading the file derives the same key.
 */
export function ticketKeyFromFile(bytes: Buffer): Buffer | null {
  if (bytes.length === 48) return Buffer.from(bytes);
  if (bytes.length !== 80) return null;
  const derive = (secret: Buffer, info: string): Buffer => Buffer.from(hkdfSync('sha256', secret, bytes.subarray(0, 16), info, 16));
  return Buffer.concat([bytes.subarray(0, 16), derive(bytes.subarray(16, 48), 'sluice ticket hmac'), derive(bytes.subarray(48, 80), 'sluice ticket aes')]);
}

/**
 * The key of the first `ssl_session_ticket_key` (hex), after checking every file as nginx does;
 * null without any. `false` when a file failed (reported).
 */
export function loadTicketKeys(cx: BuildContext, refs: readonly ConfigFileRef[]): string | null | false {
  let first: Buffer | null = null;
  let ok = true;
  for (const ref of refs) {
    const r = readText(cx, ref.path);
    if ('error' in r) {
      problemOnce(cx, openFailedMessage(ref.path, r.error), ref.loc, PATH_HINT);
      ok = false;
      continue;
    }
    const key = ticketKeyFromFile(r.bytes);
    if (key === null) {
      problemOnce(cx, `"${ref.path}" must be 48 or 80 bytes`, ref.loc,
        'make one with "openssl rand 80 > FILE" (80 bytes) or "openssl rand 48 > FILE" (48 bytes)');
      ok = false;
      continue;
    }
    first ??= key;
  }
  if (!ok) return false;
  return first === null ? null : first.toString('hex');
}

/**
 * OpenSSL resumes a session only where the session id context is the one it was made with; as
 * nginx's ngx_ssl_session_id_context, it covers the certificates and the client CAs, so a
 * session made for one certificate never resumes on a server with another.
 */
export function sessionIdContext(certificates: readonly LoadedCertificate[], clientCa: string | null, verifyClient: string): string {
  const h = createHash('sha256');
  for (const c of certificates) h.update(c.cert).update('\0');
  h.update(clientCa ?? '').update('\0').update(verifyClient);
  // SSL_MAX_SID_CTX_LENGTH is 32 bytes.
  return h.digest('hex').slice(0, 32);
}
