/**
 * Which server answers on an address when no server_name matches: nginx's default server is the
 * one whose `listen` has `default_server`, else the first server (in config order) that listens
 * on that address. `Listen.defaultServer` keeps what was written; this derives the effective one.
 */
import type { HttpConfig, Listen, ServerConfig } from './types.js';

/** The default server for each listen key ("127.0.0.1:8080", "[::1]:80", "0.0.0.0:80"). */
export function defaultServerByListen(http: HttpConfig): ReadonlyMap<string, ServerConfig> {
  return defaultServers(http.servers);
}

/** The same for any list of servers in config order (also before the Config is assembled). */
export function defaultServers<S extends { readonly listens: readonly Listen[] }>(servers: readonly S[]): Map<string, S> {
  const result = new Map<string, S>();
  const explicit = new Set<string>();
  for (const server of servers) {
    for (const listen of server.listens) {
      if (listen.defaultServer && !explicit.has(listen.key)) {
        explicit.add(listen.key);
        result.set(listen.key, server);
      } else if (!result.has(listen.key)) {
        result.set(listen.key, server);
      }
    }
  }
  return result;
}
