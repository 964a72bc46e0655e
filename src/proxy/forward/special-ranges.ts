/**
 * The address ranges a forward proxy must not reach unless the config names them: the proxy's own
 * host, private networks and what sits on them (cloud metadata at 169.254.169.254), and addresses
 * that are no destination at all. An open path to these is the classic forward-proxy hole
 * (server-side request forgery), so they are judged on the address a name resolved to, not on the
 * name (a DNS answer can point anywhere: rebinding).
 */
import { inNetwork, parseCidr, unmapIPv4 } from '../../core/cidr.js';
import type { Cidr } from '../../core/cidr.js';

/** A special range and its prefix length: only an allow rule at least as narrow opens it. */
export interface SpecialRange {
  readonly cidr: Cidr;
  readonly prefix: number;
  readonly text: string;
}

/** RFC 6890's special-purpose registries, the parts a proxy could be turned against. */
const RANGES: readonly SpecialRange[] = [
  '0.0.0.0/8', // "this network" (0.0.0.0 reaches the local host)
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // shared address space (carrier-grade NAT)
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments
  '192.168.0.0/16', // RFC 1918
  '198.18.0.0/15', // benchmarking
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
  '::/128', // unspecified
  '::1/128', // loopback
  '64:ff9b::/96', // NAT64: reaches IPv4 addresses, private ones included
  '100::/64', // discard
  'fc00::/7', // unique local (ULA)
  'fe80::/10', // link-local
  'ff00::/8', // multicast
].map((text) => {
  const cidr = parseCidr(text) as Cidr;
  return { cidr, prefix: prefixLength(cidr), text };
});

/** The number of leading one bits of a network's mask. */
export function prefixLength(cidr: Cidr): number {
  let n = 0;
  for (const b of cidr.mask) {
    if (b === 0xff) n += 8;
    else {
      for (let bit = 0x80; (b & bit) !== 0; bit >>= 1) n++;
      break;
    }
  }
  return n;
}

/** An address as bytes, with an IPv4-mapped IPv6 address taken as the IPv4 one it holds. */
export function plainBytes(family: 4 | 6, bytes: readonly number[]): { family: 4 | 6; bytes: readonly number[] } {
  const v4 = family === 6 ? unmapIPv4(bytes) : null;
  return v4 === null ? { family, bytes } : { family: 4, bytes: v4 };
}

/** The special range `bytes` lies in, or null for an ordinary public address. */
export function specialRange(family: 4 | 6, bytes: readonly number[]): SpecialRange | null {
  for (const r of RANGES) if (r.cidr.family === family && inNetwork(bytes, r.cidr.addr, r.cidr.mask)) return r;
  return null;
}
