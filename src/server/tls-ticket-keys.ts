/**
 * The session ticket key of a proxy process when no `ssl_session_ticket_key` is written. nginx's
 * master makes one at start and its workers inherit it, so a ticket from one worker resumes in
 * another; Sluice's primary hands its key to the workers the same way (in the environment, as the
 * sticky-cookie secret). It lives as long as the process: reloads keep it, so tickets stay valid.
 */
import { randomBytes } from 'node:crypto';

/** The environment variable that carries the primary's ticket key (hex) to its workers. */
export const TICKET_KEY_ENV = 'SLUICE_TICKET_KEY';

/** Node.js's ticketKeys length: key name, HMAC secret and AES key, 16 bytes each. */
export const TICKET_KEY_BYTES = 48;

let processKey: Buffer | null = null;

/** This process's ticket key: the primary's when it gave one, else made once, at random. */
export function processTicketKey(): Buffer {
  if (processKey === null) {
    const inherited = process.env[TICKET_KEY_ENV];
    processKey = inherited !== undefined && /^[0-9a-f]{96}$/.test(inherited) ? Buffer.from(inherited, 'hex') : randomBytes(TICKET_KEY_BYTES);
  }
  return processKey;
}
