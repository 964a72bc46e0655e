/**
 * The Redis side of `limit_req_zone ... fleet` and `limit_conn_zone ... fleet` (docs/fleet.md
 * "Shared limits"): the key layout and the Lua scripts, each one atomic round trip per request.
 *
 * Keys share the fleet's `{fleet}` hash tag (member-record.ts), so that in a Redis Cluster a
 * script may touch a request's every zone and the members' records (all on one shard):
 * - `PREFIX{fleet}:limit_req:ZONE:KEY`: a hash {e: excess in milli-requests, l: last account in
 *   ms of Redis's clock}, expiring once leaked empty (plus nginx's idle minute);
 * - `PREFIX{fleet}:limit_conn:ZONE:KEY`: a hash member id -> open count; a member whose record
 *   (`PREFIX{fleet}:member:ID`, expiring `ttl` after its last heartbeat) is gone no longer counts,
 *   and its field is dropped the next time the key is used.
 */

/** Where a zone's keys start; the key's bytes (latin1, as `$binary_remote_addr` gives them) follow. */
export function limitKeyPrefix(keyPrefix: string, kind: 'conn' | 'req', zone: string): string {
  return `${keyPrefix}{fleet}:limit_${kind}:${zone}:`;
}

/**
 * The limit keys under one fleet key prefix: each zone's prefix ({@link limitKeyPrefix}) is made
 * once, as bytes, and a request's key is that prefix and its key's bytes in one buffer: bytes,
 * not text (a binary address is not UTF-8).
 */
export class LimitKeys {
  readonly keyPrefix: string;
  /** Prefix of a member's record key (member-record.ts fleetKeys). */
  readonly memberPrefix: string;
  readonly #conn = new Map<string, Buffer>();
  readonly #req = new Map<string, Buffer>();

  constructor(keyPrefix: string, memberPrefix: string) {
    this.keyPrefix = keyPrefix;
    this.memberPrefix = memberPrefix;
  }

  key(kind: 'conn' | 'req', zone: string, key: string): Buffer {
    const zones = kind === 'conn' ? this.#conn : this.#req;
    let prefix = zones.get(zone);
    if (prefix === undefined) {
      prefix = Buffer.from(limitKeyPrefix(this.keyPrefix, kind, zone));
      zones.set(zone, prefix);
    }
    const out = Buffer.allocUnsafe(prefix.length + key.length);
    prefix.copy(out, 0);
    out.write(key, prefix.length, 'latin1');
    return out;
  }
}

/**
 * ngx_http_limit_req_handler's lookups and ngx_http_limit_req_account, as memory-store.ts does
 * them, on Redis's clock (TIME): one clock for every instance, so machines whose clocks differ
 * share one bucket correctly. Atomic, so nginx's per-node `count` (a node held between lookup and
 * account) is not needed, and a node a refused request would have made is simply not made.
 * KEYS[i]: check i's bucket. ARGV per check (4 each): rate, burst, delay, last (1 or 0).
 * Returns {1, index, excess} busy, or {0, delay ms, excess, index} ok (indexes from 0).
 */
export const LIMIT_REQ_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function elapsed(last)
  local ms = now - last
  if ms < -60000 then return 1 end
  if ms < 0 then return 0 end
  return ms
end
local function leak(excess, rate, ms)
  local e = excess - math.floor(rate * ms / 1000) + 1000
  if e < 0 then return 0 end
  return e
end
local function store(key, excess, last, rate)
  redis.call('HSET', key, 'e', excess, 'l', last)
  -- Leaked empty, a bucket is as good as none; nginx keeps an idle key at least a minute.
  redis.call('PEXPIRE', key, math.floor(excess * 1000 / rate) + 60000)
end
local n = #KEYS
local held = {}
local stop = n
local first = 0
local accounted = false
for i = 1, n do
  local a = (i - 1) * 4
  local rate = tonumber(ARGV[a + 1])
  local burst = tonumber(ARGV[a + 2])
  local last = ARGV[a + 4] == '1'
  local v = redis.call('HMGET', KEYS[i], 'e', 'l')
  local excess = 0
  local ms = 0
  if v[1] then
    ms = elapsed(tonumber(v[2]))
    excess = leak(tonumber(v[1]), rate, ms)
    if excess > burst then return {1, i - 1, excess} end
  end
  if last then
    if v[1] then
      local l = tonumber(v[2])
      if ms ~= 0 then l = now end
      store(KEYS[i], excess, l, rate)
    else
      store(KEYS[i], 0, now, rate)
    end
    stop = i
    first = excess
    accounted = true
    break
  end
  if v[1] then held[i] = {tonumber(v[1]), tonumber(v[2])} else held[i] = false end
end
-- ngx_http_limit_req_account: the held buckets are accounted now, the longest delay wins.
local index = stop
local upto = stop - 1
if not accounted then upto = n end
local function delayOf(e, i)
  local d = tonumber(ARGV[(i - 1) * 4 + 3])
  if e <= d then return 0 end
  return math.floor((e - d) * 1000 / tonumber(ARGV[(i - 1) * 4 + 1]))
end
local excess = first
local maxDelay = delayOf(first, index)
for i = upto, 1, -1 do
  local rate = tonumber(ARGV[(i - 1) * 4 + 1])
  local h = held[i]
  local e = 0
  if h then
    local ms = elapsed(h[2])
    e = leak(h[1], rate, ms)
    local l = h[2]
    if ms ~= 0 then l = now end
    store(KEYS[i], e, l, rate)
  else
    store(KEYS[i], 0, now, rate)
  end
  local d = delayOf(e, i)
  if d > maxDelay then
    maxDelay = d
    excess = e
    index = i
  end
end
return {0, maxDelay, excess, index - 1}
`;

/**
 * Drops a member's hold on a key (its count, deleted at 0; a key without fields is gone).
 * Shared by the acquire and release scripts.
 */
const DECREMENT = `
local function decrement(key, id)
  if redis.call('HINCRBY', key, id, -1) <= 0 then redis.call('HDEL', key, id) end
end
`;

/**
 * ngx_http_limit_conn_handler over the fleet: each key's count is the sum of its live members'
 * holds; over the limit, this request's holds so far are dropped and the index returned.
 * KEYS[i]: check i's key. ARGV[1] member record prefix, ARGV[2] own id, ARGV[2 + i] check i's limit.
 * Returns -1 (counted everywhere) or the index (from 0) that refused.
 */
export const LIMIT_CONN_ACQUIRE_SCRIPT = `${DECREMENT}
for i = 1, #KEYS do
  local fields = redis.call('HGETALL', KEYS[i])
  local total = 0
  for j = 1, #fields, 2 do
    local member = fields[j]
    if member ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. member) == 0 then
      -- A member whose record expired died (or lost Redis for longer than its ttl): its holds go.
      redis.call('HDEL', KEYS[i], member)
    else
      total = total + tonumber(fields[j + 1])
    end
  end
  if total >= tonumber(ARGV[2 + i]) then
    for k = 1, i - 1 do decrement(KEYS[k], ARGV[2]) end
    return i - 1
  end
  redis.call('HINCRBY', KEYS[i], ARGV[2], 1)
end
return -1
`;

/** ngx_http_limit_conn_cleanup: KEYS the holds to drop (one each), ARGV[1] the member id they were taken under. */
export const LIMIT_CONN_RELEASE_SCRIPT = `${DECREMENT}
for i = 1, #KEYS do decrement(KEYS[i], ARGV[1]) end
return 0
`;
