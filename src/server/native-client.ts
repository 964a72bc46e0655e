/**
 * What becomes of a connection the addon accepted (native-accept.ts) on a listener of Sluice's.
 */
import type { Server } from 'node:http';
import type { AcceptedConnection } from './native-accept.js';
import { socketForAccepted } from './native-accept.js';

/**
 * A connection the addon accepted: a net.Socket on its descriptor, handed to the server's
 * `'connection'` listeners (the registry, the lean front end) with the bytes read first, as
 * libuv's accept would have; client_header_timeout that passed in the addon is the socket's
 * timeout, at once.
 */
export function takeAccepted(server: Server, c: AcceptedConnection): void {
  const socket = socketForAccepted(server, c.fd, c.head);
  if (c.timedOut) socket.emit('timeout');
}
