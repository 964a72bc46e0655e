/**
 * The PROXY protocol header an L4 balancer (HAProxy, AWS NLB, another nginx's stream proxy) puts
 * before a client's bytes, read on a `listen ... proxy_protocol` address before anything else
 * (nginx's ngx_proxy_protocol_read): version 1 (text, "PROXY TCP4 src dst sport dport\r\n", at
 * most 107 bytes) and version 2 (a 16-byte binary head, then addresses and TLVs). A header that
 * does not parse closes the connection, logged as nginx logs it ("broken header: ..."); so does
 * one that is not complete within `proxy_protocol_timeout`.
 */
import type { Socket } from 'node:net';
import { formatIp } from '../core/cidr.js';

/** What the header says about the client; `null` addresses for "UNKNOWN" / LOCAL (health checks of the balancer). */
export interface ProxyProtocolInfo {
  readonly addr: string;
  readonly port: number;
  readonly serverAddr: string;
  readonly serverPort: number;
}

/** RFC-less but fixed: the v2 signature (the PROXY protocol spec, section 2.2). */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** nginx's NGX_PROXY_PROTOCOL_V1_MAX_HEADER. */
const V1_MAX = 107;
/** The largest header read (a v2 header with TLVs); nginx bounds it by its read buffer. */
const MAX_HEADER = 4096;

export type HeaderParse =
  | { readonly kind: 'more' }
  | { readonly kind: 'ok'; readonly info: ProxyProtocolInfo | null; readonly length: number }
  | { readonly kind: 'broken'; readonly log: string };

function broken(buf: Buffer): HeaderParse {
  // nginx logs what it read, up to the first CR or LF.
  let end = 0;
  while (end < buf.length && buf[end] !== 0x0d && buf[end] !== 0x0a) end++;
  return { kind: 'broken', log: `broken header: "${buf.subarray(0, end).toString('latin1')}"` };
}

/** ngx_proxy_protocol_read_addr: hex digits, '.' and ':' (the address is checked when used, by realip). */
const V1_ADDR = /^[0-9a-fA-F.:]+$/;

function port(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

/** Version 1: "PROXY TCP4|TCP6|UNKNOWN ..." up to CRLF. */
function parseV1(buf: Buffer): HeaderParse {
  const end = buf.indexOf('\r\n');
  if (end < 0) return buf.length >= V1_MAX ? broken(buf) : { kind: 'more' };
  if (end + 2 > V1_MAX) return broken(buf);
  const line = buf.subarray(0, end).toString('latin1');
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') return broken(buf);
  // "PROXY UNKNOWN" and anything after it: the connection is the balancer's own.
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', info: null, length: end + 2 };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return broken(buf);
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const sp = port(sport);
  const dp = port(dport);
  if (!V1_ADDR.test(src) || !V1_ADDR.test(dst) || sp === null || dp === null) return broken(buf);
  return { kind: 'ok', info: { addr: src, port: sp, serverAddr: dst, serverPort: dp }, length: end + 2 };
}

/** Version 2: signature, version/command, family/protocol, length, then the addresses. */
function parseV2(buf: Buffer): HeaderParse {
  if (buf.length < 16) return { kind: 'more' };
  const verCmd = buf[12]!;
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  if ((verCmd & 0xf0) !== 0x20) return { kind: 'broken', log: `unknown PROXY protocol version: ${verCmd >> 4}` };
  if (16 + len > MAX_HEADER) return { kind: 'broken', log: 'header is too large' };
  if (buf.length < 16 + len) return { kind: 'more' };
  const length = 16 + len;
  // ngx_proxy_protocol_v2_read: a command other than PROXY (LOCAL: the balancer's own health
  // check), a transport other than STREAM or an address family other than INET/INET6 is skipped,
  // and the connection keeps its own address; addresses shorter than their family's are broken.
  if ((verCmd & 0x0f) !== 1 || (fam & 0x0f) !== 1) return { kind: 'ok', info: null, length };
  const body = buf.subarray(16, length);
  const family = fam >> 4;
  if (family === 1) {
    if (len < 12) return { kind: 'broken', log: 'broken PROXY protocol v2 addresses' };
    const ip = (o: number): string => `${body[o]}.${body[o + 1]}.${body[o + 2]}.${body[o + 3]}`;
    return { kind: 'ok', info: { addr: ip(0), serverAddr: ip(4), port: body.readUInt16BE(8), serverPort: body.readUInt16BE(10) }, length };
  }
  if (family === 2) {
    if (len < 36) return { kind: 'broken', log: 'broken PROXY protocol v2 addresses' };
    return {
      kind: 'ok', length,
      info: { addr: formatIp({ family: 6, bytes: [...body.subarray(0, 16)] }), serverAddr: formatIp({ family: 6, bytes: [...body.subarray(16, 32)] }), port: body.readUInt16BE(32), serverPort: body.readUInt16BE(34) },
    };
  }
  return { kind: 'ok', info: null, length };
}

/** Parses the bytes read so far: a whole header, a need for more, or a broken one. */
export function parseProxyHeader(buf: Buffer): HeaderParse {
  if (buf.length === 0) return { kind: 'more' };
  if (buf[0] === 0x0d) {
    const sig = Math.min(buf.length, V2_SIGNATURE.length);
    if (!buf.subarray(0, sig).equals(V2_SIGNATURE.subarray(0, sig))) return broken(buf);
    return parseV2(buf);
  }
  const prefix = Math.min(buf.length, 6);
  if (buf.subarray(0, prefix).toString('latin1') !== 'PROXY '.slice(0, prefix)) return broken(buf);
  return parseV1(buf);
}

/** Why reading the header ended without one. */
export type HeaderFailure = { readonly kind: 'broken'; readonly log: string } | { readonly kind: 'closed' };

/**
 * Reads the PROXY header from a new connection, then hands the socket on (paused, with any bytes
 * after the header put back for whoever reads next). `done` is called once. The caller's
 * client_header_timeout (nginx times the header's read with it) destroys a connection that
 * never sends one, which ends the read as 'closed'.
 */
export function readProxyHeader(
  socket: Socket,
  done: (result: { readonly ok: true; readonly info: ProxyProtocolInfo | null } | { readonly ok: false; readonly failure: HeaderFailure }) => void,
): void {
  let pending: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (r: Parameters<typeof done>[0]): void => {
    if (finished) return;
    finished = true;
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onEnd);
    done(r);
  };
  const onData = (chunk: Buffer): void => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const r = parseProxyHeader(pending);
    if (r.kind === 'more') return;
    socket.pause();
    if (r.kind === 'broken') {
      finish({ ok: false, failure: r });
      return;
    }
    const rest = pending.subarray(r.length);
    if (rest.length > 0) socket.unshift(rest);
    finish({ ok: true, info: r.info });
  };
  const onEnd = (): void => finish({ ok: false, failure: { kind: 'closed' } });
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
}
