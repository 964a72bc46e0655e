/**
 * Sluice's own WebSocket directives (nginx has none of these): `websocket_allowed_origins`, the
 * pages a WebSocket handshake may come from (routing/origins.ts checks it), and the guardrails of
 * an open tunnel (proxy/tunnel/relay.ts applies them): `websocket_max_message_size`,
 * `websocket_max_frame_size`, `websocket_ping_interval`, `websocket_ping_timeout`,
 * `websocket_message_rate`.
 */
import { schemeDefaultPort } from '../../core/default-ports.js';
import type { OriginRule } from '../types.js';
import type { SettingsDraft } from '../draft.js';
import { HTTP_SERVER_LOCATION, ONE_OR_MORE, TAKE1, settingsOf, type DirectiveSpec } from './table.js';

/** `[scheme://]host[:port]`, `*.` before the host for its subdomains. */
const HOST_ENTRY = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::([0-9]{1,5}))?$/i;

export const websocketDirectives: readonly DirectiveSpec[] = [
  {
    // Lines of one level add up; a level with its own lines inherits none (as nginx's arrays).
    name: 'websocket_allowed_origins', contexts: HTTP_SERVER_LOCATION, args: ONE_OR_MORE, repeatable: true,
    handle(d, scope, cx) {
      const rules: OriginRule[] = [];
      for (const arg of d.args) {
        if (arg === '*') rules.push({ kind: 'any' });
        else if (arg === 'none') rules.push({ kind: 'none' });
        else if (arg === 'null') rules.push({ kind: 'null' });
        else if (arg.includes('$')) {
          const value = cx.complex(arg, d);
          if (value !== null) rules.push({ kind: 'value', value });
        } else {
          const m = HOST_ENTRY.exec(arg);
          const port = m?.[4];
          if (m === null || (port !== undefined && Number(port) > 65535)) {
            cx.problem(`invalid origin "${arg}" in "websocket_allowed_origins"`, d,
              'an origin is [SCHEME://]HOST[:PORT] ("https://app.example.com", "*.example.com"), "*", "none", "null" or a value with variables ("$scheme://$host")');
            continue;
          }
          const scheme = m[1]?.toLowerCase() ?? null;
          const normalPort = port === undefined ? (scheme === null ? null : '') : scheme !== null && schemeDefaultPort(scheme) === port ? '' : String(Number(port));
          rules.push({ kind: 'host', scheme, host: m[3]!.toLowerCase(), wildcard: m[2] !== undefined, port: normalPort });
        }
      }
      (settingsOf(scope).websocketOrigins ??= []).push(...rules);
    },
  },
  offOr('websocket_max_message_size', 'websocketMaxMessage', 'size'),
  offOr('websocket_max_frame_size', 'websocketMaxFrame', 'size'),
  offOr('websocket_ping_interval', 'websocketPingInterval', 'duration'),
  offOr('websocket_ping_timeout', 'websocketPingTimeout', 'duration'),
  {
    name: 'websocket_message_rate', contexts: HTTP_SERVER_LOCATION, args: [1, 4],
    handle(d, scope, cx) {
      const [rate, ...params] = d.args as [string, ...string[]];
      if (rate === 'off' && params.length === 0) {
        settingsOf(scope).websocketMessageRate = null;
        return;
      }
      // As limit_req_zone's rate: "100r/s", "30r/m"; the "r" may be left out.
      const m = /^([0-9]+)r?\/([sm])$/.exec(rate);
      if (m === null || Number(m[1]) === 0) {
        cx.problem(`invalid rate "${rate}"`, d, 'a rate is messages per second or per minute ("100/s", "30r/m"), or "off"');
        return;
      }
      const settings = { rate: Number(m[1]) / (m[2] === 'm' ? 60 : 1), burst: 0, both: false, close: false, text: rate };
      for (const p of params) {
        const burst = /^burst=([0-9]+)$/.exec(p);
        if (burst !== null) settings.burst = Number(burst[1]);
        else if (p === 'both') settings.both = true;
        else if (p === 'close') settings.close = true;
        else {
          cx.problem(`invalid parameter "${p}"`, d, 'websocket_message_rate RATE [burst=N] [both] [close]');
          return;
        }
      }
      settingsOf(scope).websocketMessageRate = settings;
    },
  },
];

/** A size in bytes or a time in ms, or `off` (0, as `0` itself: no limit, like client_max_body_size 0). */
function offOr(name: string, key: 'websocketMaxMessage' | 'websocketMaxFrame' | 'websocketPingInterval' | 'websocketPingTimeout', unit: 'size' | 'duration'): DirectiveSpec {
  return {
    name, contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = d.args[0] === 'off' ? 0 : unit === 'size' ? cx.size(d, d.args[0]!) : cx.duration(d, d.args[0]!);
      if (v !== null) (settingsOf(scope) as SettingsDraft)[key] = v;
    },
  };
}
