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

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/**
 * The three forms of RFC 9110 5.6.7 (IMF-fixdate, RFC 850, asctime) as nginx reads them: the
 * weekday is skipped and nothing after the time (asctime: the year) is looked at. Groups: day,
 * month, year, hour, minute, second.
 */
const IMF_FIXDATE = /^[^, ]*, *(\d\d) ([A-Z][a-z][a-z]) (\d{4}) (\d\d):(\d\d):(\d\d)/;
const RFC850 = /^[^, ]*, *(\d\d)-([A-Z][a-z][a-z])-(\d\d) (\d\d):(\d\d):(\d\d)/;
const ASCTIME = /^[^, ]* +([A-Z][a-z][a-z]) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})/;

/**
 * An HTTP date in ms since the epoch, or null when it is not one (nginx's ngx_parse_http_time:
 * `Expires: 0` and other invalid dates are errors, not "already expired").
 */
export function parseHttpDate(value: string): number | null {
  let f: (string | undefined)[] | null = IMF_FIXDATE.exec(value);
  if (f === null) {
    const r = RFC850.exec(value);
    // RFC 9110 5.6.7: a two-digit year below 70 is in this century (nginx's rule too).
    if (r !== null) f = [r[0], r[1], r[2], String(Number(r[3]) + (Number(r[3]) < 70 ? 2000 : 1900)), r[4], r[5], r[6]];
  }
  if (f === null) {
    const a = ASCTIME.exec(value);
    if (a !== null) f = [a[0], a[2], a[1], a[6], a[3], a[4], a[5]];
  }
  if (f === null) return null;
  const [day, month, year, hour, minute, second] = [Number(f[1]), MONTHS.indexOf(f[2] as string), Number(f[3]), Number(f[4]), Number(f[5]), Number(f[6])];
  if (month === -1 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const ms = Date.UTC(year, month, day, hour, minute, second);
  // nginx refuses Feb 30 and the like rather than rolling over into the next month.
  return new Date(ms).getUTCDate() === day ? ms : null;
}
