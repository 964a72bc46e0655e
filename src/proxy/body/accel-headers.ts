/**
 * The upstream's X-Accel-* headers Sluice acts on (ngx_http_upstream's process_buffering and
 * process_limit_rate), each switched off by `proxy_ignore_headers`.
 */
import type { Settings } from '../../config/types.js';
import type { UpstreamMessage } from '../client/upstream-client.js';

/**
 * Whether the response is buffered: `proxy_buffering`, unless the upstream says otherwise with
 * `X-Accel-Buffering: yes` or `no` (nginx compares the value case-insensitively and ignores any
 * other).
 */
export function responseBuffered(s: Settings, up: UpstreamMessage): boolean {
  if (!s.buffering.ignoreHeaders.has('x-accel-buffering')) {
    const v = up.headers['x-accel-buffering'];
    if (typeof v === 'string') {
      const lower = v.toLowerCase();
      if (lower === 'yes') return true;
      if (lower === 'no') return false;
    }
  }
  return s.proxyBuffering;
}

/**
 * `limit_rate` (or what `set $limit_rate` made it for this request), or the upstream's
 * `X-Accel-Limit-Rate` (bytes per second, 0 for none) when it is a number.
 */
export function responseLimitRate(s: Settings, up: UpstreamMessage, requestRate: number | null = null): number {
  if (!s.buffering.ignoreHeaders.has('x-accel-limit-rate')) {
    const v = up.headers['x-accel-limit-rate'];
    if (typeof v === 'string' && /^[0-9]+$/.test(v)) return Number(v);
  }
  return requestRate ?? s.limitRate;
}
