/**
 * The variables Sluice knows, shared by the control plane (which rejects unknown ones with nginx's
 * `unknown "name" variable`) and the data plane (which evaluates them; a unit test keeps the two
 * in step). Names are without the `$`.
 */
export const BUILTIN_VARIABLES: readonly string[] = Object.freeze([
  'host', 'hostname', 'remote_addr', 'remote_port', 'realip_remote_addr', 'realip_remote_port', 'remote_user', 'server_addr', 'server_port',
  'server_name', 'server_protocol', 'scheme', 'https', 'request', 'request_method', 'request_uri',
  'uri', 'document_uri', 'args', 'query_string', 'is_args', 'request_length', 'request_id', 'request_body', 'request_body_file',
  'content_type', 'content_length', 'proxy_host', 'proxy_port', 'proxy_add_x_forwarded_for',
  'status', 'body_bytes_sent', 'bytes_sent', 'bytes_received', 'request_time', 'upstream_addr',
  'upstream_status', 'upstream_cache_status', 'upstream_connect_time', 'upstream_header_time', 'upstream_response_time',
  'upstream_bytes_sent', 'upstream_bytes_received', 'time_local', 'time_iso8601', 'msec',
  'connection', 'connection_requests', 'pid', 'nginx_version', 'sluice_version',
  'http_upgrade', 'websocket_duration', 'gzip_ratio', 'brotli_ratio',
  'websocket_close_code', 'websocket_messages_in', 'websocket_messages_out', 'websocket_subprotocol',
  'http_upgrade', 'websocket_duration', 'document_root', 'realpath_root', 'request_filename',
  'ssl_protocol', 'ssl_cipher', 'ssl_server_name', 'ssl_client_verify', 'ssl_alpn_protocol', 'ssl_session_reused',
  'ssl_client_s_dn', 'ssl_client_i_dn', 'ssl_early_data',
  'proxy_protocol_addr', 'proxy_protocol_port', 'proxy_protocol_server_addr', 'proxy_protocol_server_port',
  'binary_remote_addr', 'pipe', 'limit_rate', 'limit_req_status', 'limit_conn_status', 'fastcgi_script_name', 'fastcgi_path_info',
  'connections_active', 'connections_reading', 'connections_writing', 'connections_waiting',
]);

/** Families: `$http_user_agent`, `$arg_room`, `$cookie_sid`, `$sent_http_x`, `$upstream_http_x`. */
export const VARIABLE_PREFIXES: readonly string[] = Object.freeze([
  'http_', 'arg_', 'cookie_', 'sent_http_', 'upstream_http_', 'upstream_cookie_',
]);

/** True for a builtin, a family member, or a regex capture ($1..$9). */
export function isBuiltinVariable(name: string): boolean {
  if (BUILTIN_VARIABLES.includes(name)) return true;
  if (/^[0-9]$/.test(name)) return true;
  return VARIABLE_PREFIXES.some((p) => name.length > p.length && name.startsWith(p));
}

/**
 * nginx's own variables of modules Sluice does not have: a config naming one gets a hint that says
 * so (and what to do) instead of "define it with map", which would suggest the name is made up.
 */
export const NGINX_ONLY_VARIABLES: ReadonlyMap<string, string> = new Map([
  ['upstream_cache_key', 'log the variables of proxy_cache_key instead'],
  ['upstream_queue_time', 'Sluice has no upstream queue'],
  ['request_completion', 'log $status and $body_bytes_sent instead'],
  ['ssl_client_cert', 'Sluice passes no client certificate; use $ssl_client_s_dn and $ssl_client_verify'],
  ['ssl_client_raw_cert', 'Sluice passes no client certificate; use $ssl_client_s_dn and $ssl_client_verify'],
  ['ssl_client_escaped_cert', 'Sluice passes no client certificate; use $ssl_client_s_dn and $ssl_client_verify'],
  ['ssl_client_fingerprint', 'use $ssl_client_s_dn and $ssl_client_verify'],
  ['ssl_client_serial', 'use $ssl_client_s_dn and $ssl_client_verify'],
  ['ssl_session_id', 'use $ssl_session_reused'],
  ['tcpinfo_rtt', 'Node does not expose TCP_INFO'],
  ['geoip_country_code', 'Sluice has no GeoIP module; set a header from a map on $remote_addr'],
  ['invalid_referer', 'Sluice has no valid_referers; use a map on $http_referer'],
  ['secure_link', 'Sluice has no secure_link module'],
]);
