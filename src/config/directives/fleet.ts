/**
 * `fleet URL [name=NAME] [key_prefix=PREFIX] [heartbeat=TIME] [ttl=TIME] [counts_cache=TIME]
 * [timeout=TIME] [sentinel_password=PASSWORD] [ca=FILE];` (main context, Sluice's own): the Redis
 * that the instances of a fleet share state through (docs/fleet.md). nginx has no such directive
 * (nginx Plus syncs zones with its own `zone_sync` protocol instead).
 */
import { hostname } from 'node:os';
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { FleetConfig, FleetMode } from '../types.js';
import { parseDuration } from '../units.js';
import { ONE_OR_MORE, type DirectiveSpec } from './table.js';

/** Defaults of the `fleet` parameters. */
export const FLEET_DEFAULTS = {
  keyPrefix: 'sluice:',
  /** ms */
  heartbeat: 1_000,
  /** A record lives this many heartbeats: one or two lost writes do not drop a live member. */
  ttlHeartbeats: 3,
  /** ms */
  countsCache: 250,
  /** ms */
  timeout: 1_000,
  redisPort: 6379,
  sentinelPort: 26379,
} as const;

/** A member name and a key prefix go into Redis keys and metric labels: plain characters only. */
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const KEY_PREFIX = /^[A-Za-z0-9._:-]{0,64}$/;

/** The parts of a `fleet` URL, or the reason it is not one. */
export type FleetUrl = Pick<FleetConfig, 'mode' | 'nodes' | 'tls' | 'username' | 'password' | 'masterName' | 'db' | 'display'>;

const SCHEMES: Readonly<Record<string, { mode: FleetMode; tls: boolean }>> = {
  'redis:': { mode: 'standalone', tls: false },
  'rediss:': { mode: 'standalone', tls: true },
  'redis-sentinel:': { mode: 'sentinel', tls: false },
  'rediss-sentinel:': { mode: 'sentinel', tls: true },
  'redis-cluster:': { mode: 'cluster', tls: false },
  'rediss-cluster:': { mode: 'cluster', tls: true },
};

/** "host:port" or "[v6]:port", the port defaulting to `port`. */
function parseNode(text: string, port: number): { host: string; port: number } | string {
  let host = text;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return `"${text}" misses "]"`;
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return `"${text}" is not HOST:PORT`;
    portText = rest === '' ? null : rest.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  if (host === '' || /[\s/@?#]/.test(host)) return `"${text}" has no host`;
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return `invalid port in "${text}"`;
    port = Number(portText);
  }
  return { host, port };
}

/**
 * Reads `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (`rediss://` for TLS),
 * `redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]` and
 * `redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]`. Hand-parsed, since
 * WHATWG URL takes neither a host list nor a user name that is empty ("redis://:pw@h").
 */
export function parseFleetUrl(url: string): FleetUrl | string {
  const colon = url.indexOf('://');
  const scheme = colon < 0 ? '' : url.slice(0, colon + 1).toLowerCase();
  const kind = SCHEMES[scheme];
  if (kind === undefined) return 'the URL starts with redis://, rediss://, redis-sentinel:// or redis-cluster://';
  let rest = url.slice(colon + 3);
  let username: string | null = null;
  let password: string | null = null;
  const at = rest.lastIndexOf('@');
  let display = url;
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const sep = auth.indexOf(':');
    const user = sep < 0 ? auth : auth.slice(0, sep);
    const pass = sep < 0 ? null : auth.slice(sep + 1);
    try {
      username = user === '' ? null : decodeURIComponent(user);
      password = pass === null || pass === '' ? null : decodeURIComponent(pass);
    } catch {
      return 'the user or password has an invalid %-escape';
    }
    // Only the user name is AUTH's when no password follows ("redis://secret@h" means a password
    // to most clients): follow ioredis, which takes a lone user part as the password.
    if (pass === null && username !== null) {
      password = username;
      username = null;
    }
    display = `${scheme}//${username === null ? '' : encodeURIComponent(username)}${password === null ? '' : ':***'}@${rest}`;
  }
  const slash = rest.indexOf('/');
  const hostPart = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? [] : rest.slice(slash + 1).split('/').filter((p) => p !== '');
  const defaultPort = kind.mode === 'sentinel' ? FLEET_DEFAULTS.sentinelPort : FLEET_DEFAULTS.redisPort;
  const nodes: { host: string; port: number }[] = [];
  for (const part of hostPart.split(',')) {
    const node = parseNode(part, defaultPort);
    if (typeof node === 'string') return node;
    nodes.push(node);
  }
  if (kind.mode === 'standalone' && nodes.length > 1) return 'a redis:// URL names one server; use redis-sentinel:// or redis-cluster:// for several';
  let masterName: string | null = null;
  if (kind.mode === 'sentinel') {
    masterName = path.shift() ?? null;
    if (masterName === null) return 'a redis-sentinel:// URL names the master after the hosts: redis-sentinel://HOST:26379/mymaster';
  }
  let db = 0;
  if (path.length > 0) {
    const dbText = path.shift()!;
    if (!/^\d{1,5}$/.test(dbText)) return `"${dbText}" is not a database number`;
    db = Number(dbText);
    if (kind.mode === 'cluster' && db !== 0) return 'Redis Cluster has database 0 only';
  }
  if (path.length > 0) return 'the URL has more path than [/MASTER]/DB';
  return { mode: kind.mode, nodes, tls: kind.tls, username, password, masterName, db, display };
}

function fleet(d: Directive, scope: Scope, cx: BuildContext): void {
  scope.main.fleetWritten = true;
  const url = parseFleetUrl(d.args[0]!);
  if (typeof url === 'string') {
    cx.problem(`invalid URL "${d.args[0]!}" in "fleet" directive`, d, url);
    return;
  }
  let ok = true;
  const invalid = (param: string, hint: string): void => {
    cx.problem(`invalid parameter "${param}"`, d, hint);
    ok = false;
  };
  let name = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'sluice';
  let keyPrefix: string = FLEET_DEFAULTS.keyPrefix;
  let heartbeat: number = FLEET_DEFAULTS.heartbeat;
  let ttl: number | null = null;
  let countsCache: number = FLEET_DEFAULTS.countsCache;
  let timeout: number = FLEET_DEFAULTS.timeout;
  let sentinelPassword: string | null = null;
  let ca: string | null = null;
  const time = (param: string, value: string): number | null => {
    const v = parseDuration(value);
    if (v === null || v <= 0) {
      invalid(param, `"${value}" is not a time; write e.g. 500ms or 2s`);
      return null;
    }
    return v;
  };
  for (const param of d.args.slice(1)) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = param.slice(eq + 1);
    if (eq < 0) {
      invalid(param, 'fleet parameters are name=, key_prefix=, heartbeat=, ttl=, counts_cache=, timeout=, sentinel_password= and ca=');
    } else if (key === 'name') {
      if (NAME.test(value)) name = value;
      else invalid(param, 'a name is 1 to 64 letters, digits, ".", "_" or "-"');
    } else if (key === 'key_prefix') {
      if (KEY_PREFIX.test(value)) keyPrefix = value;
      else invalid(param, 'a key prefix is up to 64 letters, digits, ".", "_", "-" or ":"');
    } else if (key === 'heartbeat') {
      heartbeat = time(param, value) ?? heartbeat;
    } else if (key === 'ttl') {
      ttl = time(param, value);
    } else if (key === 'counts_cache') {
      countsCache = time(param, value) ?? countsCache;
    } else if (key === 'timeout') {
      timeout = time(param, value) ?? timeout;
    } else if (key === 'sentinel_password') {
      if (url.mode !== 'sentinel') invalid(param, 'sentinel_password= goes with a redis-sentinel:// URL');
      else sentinelPassword = value;
    } else if (key === 'ca') {
      if (!url.tls) invalid(param, 'ca= goes with a TLS URL (rediss://, rediss-sentinel://, rediss-cluster://)');
      else {
        const path = cx.path(value);
        try {
          ca = cx.readFile(path).toString('latin1');
        } catch (err) {
          cx.problem(`cannot read "${path}" in "fleet" directive (${(err as NodeJS.ErrnoException).code ?? String(err)})`, d, 'ca= names a PEM file of certificates to trust');
          ok = false;
        }
      }
    } else {
      invalid(param, 'fleet parameters are name=, key_prefix=, heartbeat=, ttl=, counts_cache=, timeout=, sentinel_password= and ca=');
    }
  }
  const finalTtl = ttl ?? heartbeat * FLEET_DEFAULTS.ttlHeartbeats;
  if (ok && finalTtl <= heartbeat) {
    cx.problem('"ttl" must be longer than "heartbeat" in "fleet" directive', d, `with heartbeat=${heartbeat}ms a member's record would expire between two writes; use e.g. ttl=${heartbeat * FLEET_DEFAULTS.ttlHeartbeats}ms`);
    ok = false;
  }
  if (!ok) return;
  scope.main.fleet = {
    ...url, ca, sentinelPassword, name, keyPrefix, heartbeat, ttl: finalTtl, countsCache, timeout, loc: locOf(d),
  };
}

export const fleetDirectives: readonly DirectiveSpec[] = [
  { name: 'fleet', contexts: ['main'], args: ONE_OR_MORE, handle: fleet },
];
