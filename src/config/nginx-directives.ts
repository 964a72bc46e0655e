/**
 * nginx directives that Sluice does not accept, so that a config written for nginx gets a precise
 * answer ("Sluice does not implement this") instead of a bare "unknown directive".
 */

/**
 * Directives planned for Sluice but not implemented yet (another change adds them). Keep this in
 * step with the directive tables: when one is implemented, delete it here.
 */
export const PLANNED_DIRECTIVES: ReadonlyMap<string, string> = new Map<string, string>([]);

/** Well-known nginx directives that Sluice does not implement (and has no plan to, for now). */
export const NGINX_ONLY_DIRECTIVES: ReadonlySet<string> = new Set([
  // core (main / events)
  'master_process', 'worker_rlimit_core',
  'worker_priority', 'working_directory', 'load_module', 'lock_file',
  'thread_pool', 'timer_resolution', 'ssl_engine', 'debug_points', 'google_perftools_profiles',
  'debug_connection', 'worker_aio_requests',
  'stream', 'mail',
  // http core
  'log_subrequest',
  'msie_padding', 'msie_refresh', 'limit_except', 'satisfy', 'http3',
  'listen_backlog', 'subrequest_output_buffer_size', 'charset_map',
  // rewrite / scripting
  'geo', 'split_clients',
  'perl', 'perl_set', 'js_include', 'js_import', 'js_set', 'js_content', 'njs',
  // gzip's less used parts and other body filters
  'gzip_window', 'gzip_hash', 'gzip_no_buffer', 'postpone_gzipping', 'gunzip', 'gunzip_buffers',
  'brotli_window', 'brotli_buffers', 'sub_filter', 'sub_filter_once',
  'addition_types',
  // access, auth, limits, status
  'auth_request', 'auth_request_set', 'status',
  'secure_link', 'secure_link_md5',
  'userid', 'userid_name', 'empty_gif', 'mirror', 'slice', 'dav_methods', 'upstream_conf', 'api',
  // proxy module parts Sluice does not implement
  'proxy_cache_purge',
  'proxy_bind', 'proxy_socket_keepalive', 'proxy_limit_rate',
  'proxy_store', 'proxy_store_access', 'proxy_force_ranges',
  'proxy_upstream_fail_timeout', 'proxy_headers_hash', 'proxy_http_version_upgrade',
  // other upstream modules and load balancers
  'fastcgi_cache', 'fastcgi_cache_path', 'fastcgi_cache_key', 'fastcgi_cache_valid', 'fastcgi_store',
  'fastcgi_bind', 'fastcgi_limit_rate', 'fastcgi_catch_stderr', 'fastcgi_socket_keepalive', 'uwsgi_pass', 'uwsgi_param', 'scgi_pass', 'scgi_param',
  'grpc_pass', 'grpc_set_header', 'grpc_read_timeout', 'memcached_pass', 'ntlm', 'queue',
  'resolver_zone', 'server_resolve', 'state',
]);

/** The hint for a directive nginx has and Sluice does not (or not yet). */
export function nginxOnlyHint(name: string): string | null {
  const planned = PLANNED_DIRECTIVES.get(name);
  if (planned !== undefined) return `"${name}" is not implemented yet (${planned}); remove it for now`;
  if (NGINX_ONLY_DIRECTIVES.has(name)) return `"${name}" is an nginx directive that Sluice does not implement; remove it`;
  return null;
}
