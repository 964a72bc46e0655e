/**
 * `websocket_rebalance [max_rate=N/s] [tolerance=PERCENT] [code=CODE];` in an upstream (Sluice's
 * own; nginx has none): tunnels on servers that hold more than their share are closed, at a frame
 * boundary and at most `max_rate` a second, so that their clients reconnect and the balancer places
 * them on the servers that hold fewer (server/rebalancer.ts runs it, upstream/rebalance/ decides).
 */
import type { BuildContext } from '../build-context.js';
import { locOf } from '../build-context.js';
import type { Scope, UpstreamDraft } from '../draft.js';
import type { Directive } from '../parser.js';
import { isValidCloseCode } from '../../websocket/close-codes.js';
import type { DirectiveSpec } from './table.js';

/** The defaults of `websocket_rebalance`, stated in docs/configuration.md. */
export const REBALANCE_DEFAULTS = {
  /** Closes per second. */
  maxRate: 10,
  /** 20%: a server may hold up to 1.2 times its share before tunnels move. */
  tolerance: 0.2,
  /** RFC 6455 7.4.1 / IANA: 1012 Service Restart, which clients take as "reconnect". */
  code: 1012,
} as const;

const SYNTAX = 'websocket_rebalance [max_rate=N/s] [tolerance=PERCENT] [code=CODE];';

/** The parameters written on the line (the directive is written with none: every default). */
function rebalance(d: Directive, scope: Scope, cx: BuildContext): void {
  let maxRate: number = REBALANCE_DEFAULTS.maxRate;
  let tolerance: number = REBALANCE_DEFAULTS.tolerance;
  let code: number = REBALANCE_DEFAULTS.code;
  const seen = new Set<string>();
  let ok = true;
  const fail = (message: string, hint: string): void => {
    cx.problem(message, d, hint);
    ok = false;
  };
  for (const arg of d.args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    if (eq < 0 || !['max_rate', 'tolerance', 'code'].includes(key)) {
      fail(`invalid parameter "${arg}"`, `write "${SYNTAX}"`);
      continue;
    }
    if (seen.has(key)) {
      fail(`duplicate parameter "${arg}"`, `"${key}" may be given once`);
      continue;
    }
    seen.add(key);
    if (key === 'max_rate') {
      // As limit_req_zone's rate=: per second or per minute, the "r" optional.
      const m = /^([0-9]{1,9})r?\/([sm])$/.exec(value);
      if (m === null || Number(m[1]) === 0) fail(`invalid rate "${arg}"`, 'max_rate is closes per second or per minute, at least 1: "max_rate=10/s", "max_rate=30/m"');
      else maxRate = Number(m[1]) / (m[2] === 'm' ? 60 : 1);
    } else if (key === 'tolerance') {
      const m = /^([0-9]{1,4})%?$/.exec(value);
      if (m === null || Number(m[1]) > 1000) fail(`invalid tolerance "${arg}"`, 'tolerance is a percentage from 0% to 1000%: "tolerance=20%"');
      else tolerance = Number(m[1]) / 100;
    } else {
      const n = /^[0-9]{4}$/.test(value) ? Number(value) : NaN;
      if (!isValidCloseCode(n)) {
        fail(`invalid close code "${arg}"`,
          'a close code that may be sent: 1000-1003, 1007-1014 or 3000-4999 (RFC 6455 7.4); 1012 (Service Restart) tells clients to reconnect');
      } else {
        code = n;
      }
    }
  }
  if (ok) scope.upstream!.rebalance = { maxRate, tolerance, code, loc: locOf(d) };
}

/**
 * Called when the upstream block ends, whatever the order of its lines: rebalancing moves a tunnel
 * only if the client's reconnection is placed by load. With any other method (or a sticky cookie)
 * the client would come back to the server it was closed on, and the tunnels would be closed
 * again and again at max_rate.
 */
export function checkRebalance(upstream: UpstreamDraft, cx: BuildContext): void {
  const r = upstream.rebalance;
  if (r === undefined) return;
  const method = upstream.method;
  const byLoad = method !== null && (method.value.name === 'least_conn' || (method.value.name === 'random' && method.value.two));
  if (!byLoad) {
    const used = method === null ? 'round-robin (the default)' : `"${method.directive}" (${method.at.file}:${method.at.line})`;
    cx.problem(`"websocket_rebalance" needs a balancing method that places clients by load`, r.loc,
      `upstream "${upstream.name}" uses ${used}, which would send a closed client back anywhere; add "least_conn;" (or "random two least_conn;") to the upstream`);
  }
  if (upstream.sticky !== null) {
    cx.problem(`"websocket_rebalance" cannot move tunnels of an upstream with "sticky"`, r.loc,
      `a reconnecting client goes back to the server its cookie names; remove "sticky" or "websocket_rebalance" from upstream "${upstream.name}"`);
  }
}

export const rebalanceDirectives: readonly DirectiveSpec[] = [
  { name: 'websocket_rebalance', contexts: ['upstream'], args: [0, 3], handle: rebalance },
];
