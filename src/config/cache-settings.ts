/** Defaults of the proxy cache settings (CacheSettings): nginx merges each directive on its own. */
import type { CacheSettings } from './types.js';

/**
 * nginx's defaults: no cache; the key `$scheme$proxy_host$request_uri` (null here, built at run
 * time); no proxy_cache_valid lines (only a response's own Cache-Control/Expires/X-Accel-Expires
 * make it cacheable then); GET and HEAD; one use; HEAD converted to GET; no stale entries
 * served; no lock (its timeout and age 5 s); no revalidation, no background update; no range offset limit.
 */
export const CACHE_DEFAULTS: CacheSettings = Object.freeze({
  zone: null,
  key: null,
  valid: [],
  methods: ['GET', 'HEAD'],
  minUses: 1,
  bypass: [],
  noCache: [],
  convertHead: true,
  useStale: [],
  lock: false,
  lockTimeout: 5000,
  lockAge: 5000,
  revalidate: false,
  backgroundUpdate: false,
  maxRangeOffset: null,
});
