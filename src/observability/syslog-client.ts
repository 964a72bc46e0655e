/**
 * Log lines to syslog over UDP in nginx's RFC 3164 form (ngx_syslog_add_header):
 * `<PRI>Dec  4 10:20:30 hostname TAG: MESSAGE`, PRI being facility * 8 + severity, the time local
 * and the host name lower-cased (`nohostname` leaves it out). A host name given as the server is
 * resolved once; a message that cannot be sent is dropped, as nginx drops it (logging must never
 * stop the proxy).
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { SyslogTarget } from '../config/types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** nginx's NGX_MAX_ERROR_STR: a longer message is cut there. */
const MAX_MESSAGE_BYTES = 2048;

/** ngx_cached_syslog_time: "Dec  4 10:20:30" (local time, the day padded with a space). */
export function syslogTime(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]!} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The datagram nginx sends for one message. */
export function syslogMessage(target: SyslogTarget, severity: number, message: string, now = new Date()): Buffer {
  const host = target.nohostname ? '' : `${hostname().toLowerCase()} `;
  const head = `<${target.facility * 8 + severity}>${syslogTime(now)} ${host}${target.tag}: `;
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(head, 'utf8'), body.length > MAX_MESSAGE_BYTES ? body.subarray(0, MAX_MESSAGE_BYTES) : body]);
}

function noop(): void {}

export class SyslogClient {
  readonly #sockets = new Map<4 | 6, Socket>();
  /** Addresses of host names, resolved once. */
  readonly #addresses = new Map<string, Promise<{ address: string; family: 4 | 6 } | null>>();

  send(target: SyslogTarget, severity: number, message: string): void {
    const datagram = syslogMessage(target, severity, message);
    const family = isIP(target.host);
    if (family === 4 || family === 6) {
      this.#socket(family).send(datagram, target.port, target.host, noop);
      return;
    }
    let resolved = this.#addresses.get(target.host);
    if (resolved === undefined) {
      resolved = new Promise((resolve) => lookup(target.host, (err, address, fam) => resolve(err ? null : { address, family: fam === 6 ? 6 : 4 })));
      this.#addresses.set(target.host, resolved);
    }
    void resolved.then((a) => {
      if (a !== null) this.#socket(a.family).send(datagram, target.port, a.address, noop);
    });
  }

  #socket(family: 4 | 6): Socket {
    let s = this.#sockets.get(family);
    if (s === undefined) {
      s = createSocket(family === 6 ? 'udp6' : 'udp4');
      s.on('error', noop);
      s.unref();
      this.#sockets.set(family, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.#sockets.values()) s.close();
    this.#sockets.clear();
  }
}
