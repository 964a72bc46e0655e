/**
 * nginx value units: durations ("1h30m", "500ms", "60") and sizes ("512", "8k", "1m", "1g").
 * Mirrors ngx_parse_time() and ngx_parse_size(): no decimals, no signs.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Unit letters in the only order nginx accepts them (largest first), with their length in ms. */
const DURATION_UNITS: readonly (readonly [string, number])[] = [
  ['y', 365 * DAY],
  ['M', 30 * DAY],
  ['w', 7 * DAY],
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
  ['ms', 1],
];

/**
 * Parses an nginx duration into milliseconds, or returns null when it is not one.
 * Units are `ms s m h d w M y` and may be combined largest first (`1h30m`, `1m 30s`);
 * a number without a unit means seconds (`60` is one minute), as in nginx.
 * With `secondsOnly` (nginx's `is_sec`, used by e.g. `fail_timeout`) `ms` is not accepted.
 */
export function parseDuration(text: string, secondsOnly = false): number | null {
  let total = 0;
  let value = 0;
  let sawDigit = false;
  let pendingDigits = false;
  let rank = -1;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch >= '0' && ch <= '9') {
      value = value * 10 + (ch.charCodeAt(0) - 48);
      if (!Number.isSafeInteger(value)) return null;
      sawDigit = true;
      pendingDigits = true;
      i++;
      continue;
    }
    if (ch === ' ' && !pendingDigits) {
      // nginx allows spaces between components ("1m 30s").
      i++;
      continue;
    }
    const unit = ch === 'm' && text[i + 1] === 's' ? 'ms' : ch;
    const found = DURATION_UNITS.findIndex(([name]) => name === unit);
    if (found < 0 || found <= rank || !pendingDigits) return null;
    if (unit === 'ms' && secondsOnly) return null;
    rank = found;
    total += value * DURATION_UNITS[found]![1];
    if (!Number.isSafeInteger(total)) return null;
    value = 0;
    pendingDigits = false;
    i += unit.length;
  }
  if (!sawDigit) return null;
  if (pendingDigits) {
    // Trailing digits without a unit are seconds, and only allowed after units bigger than a second.
    if (rank >= DURATION_UNITS.findIndex(([name]) => name === 's')) return null;
    total += value * SECOND;
  }
  return Number.isSafeInteger(total) ? total : null;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  k: 1024,
  K: 1024,
  m: 1024 * 1024,
  M: 1024 * 1024,
  g: 1024 * 1024 * 1024,
  G: 1024 * 1024 * 1024,
};

/** Parses an nginx size (`512`, `8k`, `1M`, `2g`) into bytes, or returns null when it is not one. */
export function parseSize(text: string): number | null {
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(text);
  if (m === null) return null;
  const n = Number(m[1]) * (m[2] === '' ? 1 : SIZE_UNITS[m[2]!]!);
  return Number.isSafeInteger(n) ? n : null;
}

/** Parses a non-negative decimal integer as nginx's ngx_atoi() does (digits only). */
export function parseNumber(text: string): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}
