/**
 * ngx_http_core_module's limits on what a client sends and how long its connection lives:
 * `client_max_body_size`, `client_body_buffer_size`, `keepalive_requests`.
 */
import { numberSetting, sizeSetting, type DirectiveSpec } from './table.js';

export const clientDirectives: readonly DirectiveSpec[] = [
  sizeSetting('client_max_body_size', 'clientMaxBodySize'),
  sizeSetting('client_body_buffer_size', 'clientBodyBufferSize'),
  // The upstream block has its own keepalive_requests (upstream.ts): same name, other context.
  numberSetting('keepalive_requests', 'keepaliveRequests'),
];
