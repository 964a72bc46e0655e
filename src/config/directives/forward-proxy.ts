/**
 * Sluice's forward-proxy mode (nginx has none): `forward_proxy on;` in a server makes it answer
 * `CONNECT host:port` and absolute-form `GET http://host/...` requests from clients configured
 * with a proxy, to the destinations `forward_proxy_allow` lists, optionally behind
 * `Proxy-Authorization: Basic` (`forward_proxy_auth_basic`, `forward_proxy_auth_basic_user_file`,
 * the same file format as auth_basic_user_file). src/proxy/forward/ does the work.
 */
import { parseCidr } from '../../core/cidr.js';
import type { BuildContext } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { ForwardAllowRule } from '../types.js';
import { ONE_OR_MORE, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

const SERVER = ['server'] as const;

/** Without a port, a destination may be reached on the web's two ports only. */
const DEFAULT_PORTS: readonly (readonly [number, number])[] = [[80, 80], [443, 443]];
const ANY_PORT: readonly (readonly [number, number])[] = [[1, 65535]];

const NAME = /^(\*\.|\.)?([a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*)$/i;

function forwardOf(scope: Scope): NonNullable<ReturnType<typeof settingsOf>['forwardProxy']> {
  return (settingsOf(scope).forwardProxy ??= {});
}

/** `80`, `8000-8999` or `*`; null when it is none of these. */
function parsePorts(text: string): (readonly [number, number])[] | null {
  if (text === '*') return [...ANY_PORT];
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (m === null) return null;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return null;
  return [[lo, hi]];
}

/**
 * `HOST[:PORTS]`, `*.DOMAIN[:PORTS]`, `.DOMAIN[:PORTS]`, `ADDRESS[/PREFIX][:PORTS]`, with an IPv6
 * address in brackets when a port follows (`[fd00::/8]:443`).
 */
export function parseAllowRule(text: string): ForwardAllowRule | null {
  let host = text;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return null;
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
  } else {
    const colons = text.split(':').length - 1;
    // More than one colon without brackets: an IPv6 address (or network) on its own.
    if (colons === 1) {
      host = text.slice(0, text.indexOf(':'));
      portText = text.slice(text.indexOf(':') + 1);
    }
  }
  const ports = portText === null ? DEFAULT_PORTS : parsePorts(portText);
  if (ports === null || host === '') return null;
  const cidr = /^[0-9.]+(\/[0-9]+)?$/.test(host) || host.includes(':') ? parseCidr(host) : null;
  if (cidr !== null) return { kind: 'address', name: '', withBase: false, cidr, ports, text };
  if (host.includes(':') || /^[0-9.]+(\/[0-9]+)?$/.test(host)) return null;
  const m = NAME.exec(host);
  if (m === null) return null;
  const name = m[2]!.toLowerCase();
  if (m[1] === undefined) return { kind: 'name', name, withBase: false, cidr: null, ports, text };
  return { kind: 'subdomains', name, withBase: m[1] === '.', cidr: null, ports, text };
}

function allowRules(d: Directive, scope: Scope, cx: BuildContext): void {
  const rules = (forwardOf(scope).allow ??= []);
  for (const arg of d.args) {
    const rule = parseAllowRule(arg);
    if (rule === null) {
      cx.problem(`invalid destination "${arg}" in "${d.name}" directive`, d,
        'a destination is HOST, *.DOMAIN, .DOMAIN or ADDRESS[/PREFIX], then optionally :PORT, :LOW-HIGH or :* ("api.example.com:443", "*.example.com", "10.0.0.0/8:8000-8999", "[::1]:443"); without a port, 80 and 443');
      continue;
    }
    rules.push(rule);
  }
}

export const forwardProxyDirectives: readonly DirectiveSpec[] = [
  {
    name: 'forward_proxy', contexts: SERVER, args: TAKE1,
    handle(d, scope, cx) {
      const on = parseFlag(d, cx);
      if (on !== null) forwardOf(scope).on = on;
    },
  },
  // Lines add up; with none, no destination is allowed (a forward proxy is never open by default).
  { name: 'forward_proxy_allow', contexts: SERVER, args: ONE_OR_MORE, repeatable: true, handle: allowRules },
  {
    name: 'forward_proxy_auth_basic', contexts: SERVER, args: TAKE1,
    handle(d, scope) {
      forwardOf(scope).authRealm = d.args[0] === 'off' ? null : d.args[0]!;
    },
  },
  {
    name: 'forward_proxy_auth_basic_user_file', contexts: SERVER, args: TAKE1,
    handle(d, scope, cx) {
      // Read at request time, as auth_basic_user_file is (a missing file is the request's 500).
      forwardOf(scope).authUserFile = cx.path(d.args[0]!);
    },
  },
];
