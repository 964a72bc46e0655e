/**
 * A small authoritative DNS server on 127.0.0.1 (UDP, port 0) whose answers a test sets and
 * changes: A, AAAA and CNAME records with TTLs, NXDOMAIN, SERVFAIL, an empty answer, or no
 * answer at all (the query times out). It counts the queries per name and type.
 */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';

export type DnsAnswer =
  | { readonly a?: readonly string[]; readonly aaaa?: readonly string[]; readonly cname?: string; readonly ttl?: number }
  | 'nxdomain' | 'servfail' | 'empty' | 'drop';

const TYPE_A = 1;
const TYPE_CNAME = 5;
const TYPE_AAAA = 28;

export interface DnsServer {
  readonly port: number;
  /** `127.0.0.1:PORT`, for `resolver`. */
  readonly address: string;
  /** Sets what a name answers (names are compared lower-cased; unknown names get NXDOMAIN). */
  set(name: string, answer: DnsAnswer): void;
  /** Queries received for `name` (any type, or one type: 'A', 'AAAA'). */
  queries(name: string, type?: 'A' | 'AAAA'): number;
  close(): Promise<void>;
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((p) => p !== '');
  const bufs = parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')]));
  return Buffer.concat([...bufs, Buffer.from([0])]);
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    const len = msg[i]!;
    if (len === 0) return { name: labels.join('.'), end: i + 1 };
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
}

function ipv6Bytes(text: string): Buffer {
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, null];
  const h = head === '' ? [] : head.split(':');
  const t = tail === null || tail === '' ? [] : tail.split(':');
  const groups = tail === null ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function record(name: string, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}

function reply(query: Buffer, questionEnd: number, rcode: number, answers: readonly Buffer[]): Buffer {
  const head = Buffer.alloc(12);
  query.copy(head, 0, 0, 2);
  // QR, opcode 0, AA, RD copied; RA; rcode.
  head[2] = 0x84 | (query[2]! & 0x01);
  head[3] = 0x80 | rcode;
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  return Buffer.concat([head, query.subarray(12, questionEnd), ...answers]);
}

export async function startDnsServer(): Promise<DnsServer> {
  const answers = new Map<string, DnsAnswer>();
  const counts = new Map<string, number>();
  const socket: Socket = createSocket('udp4');
  const answer = (msg: Buffer, from: RemoteInfo): void => {
    if (msg.length < 12) return;
    const q = readName(msg, 12);
    const type = msg.readUInt16BE(q.end);
    const name = q.name.toLowerCase();
    const key = `${name}|${type === TYPE_AAAA ? 'AAAA' : type === TYPE_A ? 'A' : String(type)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const questionEnd = q.end + 4;
    const a = answers.get(name) ?? 'nxdomain';
    let out: Buffer;
    if (a === 'drop') return;
    if (a === 'nxdomain') out = reply(msg, questionEnd, 3, []);
    else if (a === 'servfail') out = reply(msg, questionEnd, 2, []);
    else if (a === 'empty') out = reply(msg, questionEnd, 0, []);
    else {
      const ttl = a.ttl ?? 60;
      const records: Buffer[] = [];
      let target = q.name;
      let final = a;
      if (a.cname !== undefined) {
        records.push(record(q.name, TYPE_CNAME, ttl, encodeName(a.cname)));
        target = a.cname;
        const next = answers.get(a.cname.toLowerCase());
        final = typeof next === 'object' ? next : {};
      }
      const list = type === TYPE_A ? final.a ?? [] : type === TYPE_AAAA ? final.aaaa ?? [] : [];
      for (const ip of list) {
        const data = isIP(ip) === 4 ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip);
        records.push(record(target, type, final.ttl ?? ttl, data));
      }
      out = reply(msg, questionEnd, 0, records);
    }
    socket.send(out, from.port, from.address);
  };
  socket.on('message', answer);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  let closed: Promise<void> | null = null;
  return {
    port,
    address: `127.0.0.1:${port}`,
    set(name, a) {
      answers.set(name.toLowerCase(), a);
    },
    queries(name, type) {
      const n = name.toLowerCase();
      if (type !== undefined) return counts.get(`${n}|${type}`) ?? 0;
      return (counts.get(`${n}|A`) ?? 0) + (counts.get(`${n}|AAAA`) ?? 0);
    },
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
  };
}
