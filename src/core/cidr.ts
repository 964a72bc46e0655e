/**
 * IP addresses and CIDR networks as nginx's ngx_ptocidr reads them: `1.2.3.4`, `10.0.0.0/8`,
 * `::1`, `2001:db8::/32` (an IPv4 tail in IPv6 is allowed: `::ffff:10.0.0.1`). Addresses are
 * byte arrays (4 or 16), so IPv4 and IPv6 share one matcher.
 */

/** A parsed network: address bytes already masked, and the mask. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly addr: readonly number[];
  readonly mask: readonly number[];
  /** True when the address had bits outside the prefix (nginx: "low address bits ... are meaningless"). */
  readonly lowBits: boolean;
}

/** `a.b.c.d` with four decimal parts of at most 255 (nginx's ngx_inet_addr). */
export function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function hexGroup(p: string): number | null {
  if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
  return parseInt(p, 16);
}

/** RFC 4291 2.2 text forms: eight groups, one `::`, an IPv4 tail; no zone id. */
export function parseIPv6(text: string): number[] | null {
  if (text.length < 2 || text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): string[] | null => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (left === null || right === null) return null;
  const words: number[] = [];
  const tail: number[] = [];
  const all = halves.length === 2 ? right : left;
  // An IPv4 tail takes the place of the last two groups.
  let v4: number[] | null = null;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    v4 = parseIPv4(last);
    if (v4 === null) return null;
    all.pop();
  }
  for (const p of left) {
    const g = hexGroup(p);
    if (g === null) return null;
    words.push(g);
  }
  if (halves.length === 2) {
    for (const p of right) {
      const g = hexGroup(p);
      if (g === null) return null;
      tail.push(g);
    }
  }
  const v4Words = v4 === null ? [] : [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
  const count = words.length + tail.length + v4Words.length;
  if (halves.length === 2) {
    if (count > 7) return null;
    while (words.length + tail.length + v4Words.length < 8) words.push(0);
  } else if (count !== 8) {
    return null;
  }
  const out: number[] = [];
  for (const w of [...words, ...tail, ...v4Words]) out.push(w >> 8, w & 0xff);
  return out;
}

/** An address of either family: 4 or 16 bytes, or null. */
export function parseIp(text: string): { family: 4 | 6; bytes: number[] } | null {
  if (text.includes(':')) {
    const b = parseIPv6(text);
    return b === null ? null : { family: 6, bytes: b };
  }
  const b = parseIPv4(text);
  return b === null ? null : { family: 4, bytes: b };
}

/** `ADDR` or `ADDR/PREFIX` (nginx's ngx_ptocidr); null when it is neither. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === null) return null;
  const bits = ip.bytes.length * 8;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > bits) return null;
  }
  const mask: number[] = [];
  for (let i = 0; i < ip.bytes.length; i++) {
    const take = Math.max(0, Math.min(8, prefix - i * 8));
    mask.push(take === 0 ? 0 : (0xff << (8 - take)) & 0xff);
  }
  const addr = ip.bytes.map((b, i) => b & mask[i]!);
  const lowBits = addr.some((b, i) => b !== ip.bytes[i]);
  return { family: ip.family, addr, mask, lowBits };
}

/** Whether `bytes` lies in the network (`addr`/`mask` of the same length). */
export function inNetwork(bytes: readonly number[], addr: readonly number[], mask: readonly number[]): boolean {
  if (bytes.length !== addr.length) return false;
  for (let i = 0; i < bytes.length; i++) if ((bytes[i]! & mask[i]!) !== addr[i]) return false;
  return true;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), or null. */
export function unmapIPv4(bytes: readonly number[]): number[] | null {
  if (bytes.length !== 16) return null;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return null;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return null;
  return bytes.slice(12) as number[];
}

/**
 * nginx's ngx_cidr_match: whether the address `text` lies in one of `cidrs`; an IPv4-mapped IPv6
 * address (a dual-stack listener's view of an IPv4 client) is matched as the IPv4 address it holds.
 */
export function cidrMatch(cidrs: readonly Cidr[], text: string): boolean {
  const ip = parseIp(text);
  if (ip === null) return false;
  const v4 = ip.family === 6 ? unmapIPv4(ip.bytes) : null;
  const family = v4 === null ? ip.family : 4;
  const bytes = v4 ?? ip.bytes;
  return cidrs.some((c) => c.family === family && inNetwork(bytes, c.addr, c.mask));
}

/**
 * An address as nginx prints it (ngx_sock_ntop / ngx_inet6_ntop): IPv4 dotted; IPv6 in lower-case
 * hex with the longest run of two or more zero groups as "::", and an IPv4-mapped address as
 * `::ffff:a.b.c.d`.
 */
export function formatIp(ip: { readonly family: 4 | 6; readonly bytes: readonly number[] }): string {
  const b = ip.bytes;
  if (ip.family === 4) return b.join('.');
  const v4 = unmapIPv4(b);
  if (v4 !== null) return `::ffff:${v4.join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
