/** nginx's `ssl_protocols` / `proxy_ssl_protocols` lists as Node's TLS options. */
import { constants } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import type { TlsProtocol } from '../config/types.js';

const ORDER: readonly TlsProtocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const NO_FLAG: Readonly<Record<TlsProtocol, number>> = {
  'TLSv1': constants.SSL_OP_NO_TLSv1,
  'TLSv1.1': constants.SSL_OP_NO_TLSv1_1,
  'TLSv1.2': constants.SSL_OP_NO_TLSv1_2,
  'TLSv1.3': constants.SSL_OP_NO_TLSv1_3,
};

/**
 * The lowest and highest version of the list, and the versions between them that are not listed
 * switched off (`ssl_protocols TLSv1 TLSv1.2` leaves out TLSv1.1), as OpenSSL flags.
 */
export function protocolOptions(list: readonly TlsProtocol[]): { minVersion: SecureVersion; maxVersion: SecureVersion; secureOptions: number } {
  const present = ORDER.filter((p) => list.includes(p));
  const lo = ORDER.indexOf(present[0] ?? 'TLSv1.2');
  const hi = ORDER.indexOf(present.at(-1) ?? 'TLSv1.3');
  let secureOptions = 0;
  for (let i = lo; i <= hi; i++) if (!list.includes(ORDER[i]!)) secureOptions |= NO_FLAG[ORDER[i]!];
  return { minVersion: ORDER[lo] as SecureVersion, maxVersion: ORDER[hi] as SecureVersion, secureOptions };
}
