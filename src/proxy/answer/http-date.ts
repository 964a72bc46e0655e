/**
 * The `Date` header value (RFC 9110 6.6.1, IMF-fixdate), formatted at most once per second:
 * it has one-second resolution, and formatting a Date for every response is measurable on the
 * handshake path. Node's own HTTP server caches its Date header the same way.
 */
let cachedSecond = -1;
let cachedValue = '';

export function httpDate(nowMs: number = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedValue = new Date(second * 1000).toUTCString();
  }
  return cachedValue;
}

/**
 * nginx's ngx_parse_http_time: the three date formats of RFC 9110 5.6.7 (IMF-fixdate, RFC 850,
 * asctime), read as nginx reads them, to seconds since the epoch; -1 for anything else (nginx's
 * NGX_ERROR, which the conditional checks then compare as a time).
 */
const MDAY = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function parseHttpTime(value: string): number {
  const end = value.length;
  /** The char code at i, or 0 past the end (nginx reads its terminating NUL). */
  const c = (i: number): number => (i < end ? value.charCodeAt(i) : 0);
  const digit = (i: number): boolean => c(i) >= 48 && c(i) <= 57;
  const d = (i: number): number => c(i) - 48;
  let fmt: 'no' | 'rfc822' | 'rfc850' | 'isoc' = 'no';
  let p = 0;
  for (; p < end; p++) {
    if (c(p) === 44) break;
    if (c(p) === 32) {
      fmt = 'isoc';
      break;
    }
  }
  for (p++; p < end; p++) if (c(p) !== 32) break;
  if (end - p < 18) return -1;
  let day = 32;
  let year = 2038;
  if (fmt !== 'isoc') {
    if (!digit(p) || !digit(p + 1)) return -1;
    day = d(p) * 10 + d(p + 1);
    p += 2;
    if (c(p) === 32) {
      if (end - p < 18) return -1;
      fmt = 'rfc822';
    } else if (c(p) === 45) {
      fmt = 'rfc850';
    } else {
      return -1;
    }
    p++;
  }
  let month: number;
  switch (value[p]) {
    case 'J': month = value[p + 1] === 'a' ? 0 : value[p + 2] === 'n' ? 5 : 6; break;
    case 'F': month = 1; break;
    case 'M': month = value[p + 2] === 'r' ? 2 : 4; break;
    case 'A': month = value[p + 1] === 'p' ? 3 : 7; break;
    case 'S': month = 8; break;
    case 'O': month = 9; break;
    case 'N': month = 10; break;
    case 'D': month = 11; break;
    default: return -1;
  }
  p += 3;
  if ((fmt === 'rfc822' && c(p) !== 32) || (fmt === 'rfc850' && c(p) !== 45)) return -1;
  p++;
  if (fmt === 'rfc822') {
    if (!digit(p) || !digit(p + 1) || !digit(p + 2) || !digit(p + 3)) return -1;
    year = d(p) * 1000 + d(p + 1) * 100 + d(p + 2) * 10 + d(p + 3);
    p += 4;
  } else if (fmt === 'rfc850') {
    if (!digit(p) || !digit(p + 1)) return -1;
    year = d(p) * 10 + d(p + 1);
    year += year < 70 ? 2000 : 1900;
    p += 2;
  }
  if (fmt === 'isoc') {
    if (c(p) === 32) p++;
    if (!digit(p)) return -1;
    day = d(p++);
    if (c(p) !== 32) {
      if (!digit(p)) return -1;
      day = day * 10 + d(p++);
    }
    if (end - p < 14) return -1;
  }
  if (c(p++) !== 32) return -1;
  if (!digit(p) || !digit(p + 1)) return -1;
  const hour = d(p) * 10 + d(p + 1);
  p += 2;
  if (c(p++) !== 58) return -1;
  if (!digit(p) || !digit(p + 1)) return -1;
  const min = d(p) * 10 + d(p + 1);
  p += 2;
  if (c(p++) !== 58) return -1;
  if (!digit(p) || !digit(p + 1)) return -1;
  const sec = d(p) * 10 + d(p + 1);
  if (fmt === 'isoc') {
    p += 2;
    if (c(p++) !== 32) return -1;
    if (!digit(p) || !digit(p + 1) || !digit(p + 2) || !digit(p + 3)) return -1;
    year = d(p) * 1000 + d(p + 1) * 100 + d(p + 2) * 10 + d(p + 3);
  }
  if (hour > 23 || min > 59 || sec > 59) return -1;
  if (day === 29 && month === 1) {
    if ((year & 3) !== 0 || (year % 100 === 0 && year % 400 !== 0)) return -1;
  } else if (day > (MDAY[month] as number)) {
    return -1;
  }
  // Gauss' formula, with the year starting on March 1 (nginx's words and numbers).
  if (--month <= 0) {
    month += 12;
    year -= 1;
  }
  const days = 365 * year + Math.floor(year / 4) - Math.floor(year / 100) + Math.floor(year / 400)
    + Math.floor((367 * month) / 12) - 30 + day - 1 - 719527 + 31 + 28;
  return days * 86400 + hour * 3600 + min * 60 + sec;
}

/**
 * An HTTP date in ms since the epoch, or null when it is not one (nginx's ngx_parse_http_time:
 * `Expires: 0` and other invalid dates are errors, not "already expired").
 */
export function parseHttpDate(value: string): number | null {
  const seconds = parseHttpTime(value);
  return seconds < 0 ? null : seconds * 1000;
}
