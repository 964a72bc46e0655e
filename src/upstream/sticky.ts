import { createHmac } from 'node:crypto';
import type { StickyCookie } from '../config/types.js';
import type { Peer } from './peer.js';

/** nginx Plus writes `expires=max` as this date, with the matching Max-Age. */
const MAX_EXPIRES = 'Thu, 31 Dec 2037 23:55:55 GMT';
const MAX_AGE_SECONDS = 315_360_000;

/**
 * `sticky cookie`: each server of an upstream gets an opaque id, an HMAC of its address under a
 * secret of this proxy, so a client cannot guess or forge the id of another server. A request
 * whose cookie names an available server goes there; a response from a server the request's
 * cookie did not name sets the cookie.
 */
export class StickyRoutes {
  readonly config: StickyCookie;
  readonly #byId = new Map<string, Peer>();
  readonly #ids = new Map<Peer, string>();

  constructor(config: StickyCookie, upstream: string, peers: readonly Peer[], secret: Buffer) {
    this.config = config;
    for (const peer of peers) {
      const id = createHmac('sha256', secret).update(`${upstream}\0${peer.addr}`).digest('base64url').slice(0, 22);
      this.#byId.set(id, peer);
      this.#ids.set(peer, id);
    }
  }

  /** The server a cookie value names, if any. */
  peerFor(value: string | undefined): Peer | undefined {
    return value === undefined ? undefined : this.#byId.get(value);
  }

  idFor(peer: Peer): string {
    return this.#ids.get(peer) as string;
  }

  /** The Set-Cookie value for a response from `peer`, or null when the request already named it. */
  setCookie(peer: Peer, requestValue: string | undefined): string | null {
    const id = this.#ids.get(peer);
    if (id === undefined || id === requestValue) return null;
    const c = this.config;
    let v = `${c.name}=${id}`;
    if (c.expires !== null) {
      if (c.expires === Infinity) v += `; Expires=${MAX_EXPIRES}; Max-Age=${MAX_AGE_SECONDS}`;
      else v += `; Expires=${new Date(Date.now() + c.expires).toUTCString()}; Max-Age=${Math.floor(c.expires / 1000)}`;
    }
    if (c.domain !== null) v += `; Domain=${c.domain}`;
    v += `; Path=${c.path}`;
    if (c.httpOnly) v += '; HttpOnly';
    if (c.secure) v += '; Secure';
    if (c.sameSite !== null) v += `; SameSite=${c.sameSite[0]!.toUpperCase()}${c.sameSite.slice(1)}`;
    return v;
  }
}
