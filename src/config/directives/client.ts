/**
 * ngx_http_core_module's limits on what a client sends and how its connection ends:
 * `client_max_body_size`, `client_body_buffer_size`, `client_header_buffer_size`,
 * `large_client_header_buffers`, `keepalive_requests`, `keepalive_time`, `keepalive_disable`, `limit_rate`, `limit_rate_after`, `lingering_close`,
 * `lingering_time`, `lingering_timeout`, `reset_timedout_connection`.
 */
import {
  HTTP_SERVER_LOCATION, TAKE1, TAKE2, durationSetting, numberSetting, parseEnum, parseFlag, settingsOf, sizeSetting, type DirectiveSpec,
} from './table.js';

export const clientDirectives: readonly DirectiveSpec[] = [
  sizeSetting('client_max_body_size', 'clientMaxBodySize'),
  sizeSetting('client_body_buffer_size', 'clientBodyBufferSize'),
  // The upstream block has its own keepalive_requests (upstream.ts): same name, other context.
  numberSetting('keepalive_requests', 'keepaliveRequests'),
  durationSetting('keepalive_time', 'keepaliveTime'),
  {
    name: 'keepalive_disable', contexts: HTTP_SERVER_LOCATION, args: [1, 2],
    handle(d, scope, cx) {
      const browsers: ('msie6' | 'safari')[] = [];
      for (const a of d.args) {
        const v = parseEnum(d, a, ['none', 'msie6', 'safari'] as const, cx);
        if (v === null) return;
        if (v !== 'none') browsers.push(v);
      }
      settingsOf(scope).keepaliveDisable = browsers;
    },
  },
  {
    name: 'lingering_close', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['off', 'on', 'always'] as const, cx);
      if (v !== null) settingsOf(scope).lingeringClose = v;
    },
  },
  // nginx reads the request head before it knows the virtual server: the address's default
  // server decides, hence no location context.
  {
    name: 'client_header_buffer_size', contexts: ['http', 'server'], args: TAKE1,
    handle(d, scope, cx) {
      const v = cx.size(d, d.args[0]!);
      if (v !== null) settingsOf(scope).clientHeaderBufferSize = v;
    },
  },
  {
    name: 'large_client_header_buffers', contexts: ['http', 'server'], args: TAKE2,
    handle(d, scope, cx) {
      const number = cx.number(d, d.args[0]!);
      const size = cx.size(d, d.args[1]!);
      if (number === null || size === null) return;
      // ngx_conf_set_bufs_slot: no zero buffers or size.
      if (number === 0 || size === 0) {
        cx.problem(`"${d.name}" directive invalid value`, d, 'both the number of buffers and their size must be above 0 ("4 8k")');
        return;
      }
      settingsOf(scope).largeClientHeaderBuffers = { number, size };
    },
  },
  sizeSetting('limit_rate', 'limitRate'),
  sizeSetting('limit_rate_after', 'limitRateAfter'),
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
