/**
 * ngx_http_core_module's limits on what a client sends and how its connection ends:
 * `client_max_body_size`, `client_body_buffer_size`, `keepalive_requests`, `lingering_close`,
 * `lingering_time`, `lingering_timeout`, `reset_timedout_connection`.
 */
import {
  HTTP_SERVER_LOCATION, TAKE1, durationSetting, numberSetting, parseEnum, parseFlag, settingsOf, sizeSetting, type DirectiveSpec,
} from './table.js';

export const clientDirectives: readonly DirectiveSpec[] = [
  sizeSetting('client_max_body_size', 'clientMaxBodySize'),
  sizeSetting('client_body_buffer_size', 'clientBodyBufferSize'),
  // The upstream block has its own keepalive_requests (upstream.ts): same name, other context.
  numberSetting('keepalive_requests', 'keepaliveRequests'),
  {
    name: 'lingering_close', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['off', 'on', 'always'] as const, cx);
      if (v !== null) settingsOf(scope).lingeringClose = v;
    },
  },
  durationSetting('lingering_time', 'lingeringTime'),
  durationSetting('lingering_timeout', 'lingeringTimeout'),
  {
    name: 'reset_timedout_connection', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).resetTimedoutConnection = v;
    },
  },
];
