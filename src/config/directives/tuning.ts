/**
 * nginx's sizing knobs for its own data structures: the hash tables it builds at start
 * (`server_names_hash_*`, `variables_hash_*`, `map_hash_*`, `proxy_headers_hash_*`) and its
 * per-connection and per-request memory pools (`connection_pool_size`, `request_pool_size`).
 * Sluice builds no such tables or pools (JavaScript maps grow as needed), so these are checked
 * as nginx checks them and have nothing to change: a config tuned for nginx loads as it is.
 */
import type { Context } from '../draft.js';
import { HTTP_SERVER_LOCATION, TAKE1, type DirectiveSpec } from './table.js';

/** A number (`*_max_size`) or a size (`*_bucket_size`, pools), validated with nginx's message. */
function accepted(name: string, contexts: readonly Context[], kind: 'number' | 'size'): DirectiveSpec {
  return {
    name, contexts, args: TAKE1,
    handle(d, _scope, cx) {
      if (kind === 'number') cx.number(d, d.args[0]!);
      else cx.size(d, d.args[0]!);
    },
  };
}

export const tuningDirectives: readonly DirectiveSpec[] = [
  accepted('server_names_hash_max_size', ['http'], 'number'),
  accepted('server_names_hash_bucket_size', ['http'], 'size'),
  accepted('variables_hash_max_size', ['http'], 'number'),
  accepted('variables_hash_bucket_size', ['http'], 'size'),
  accepted('map_hash_max_size', ['http'], 'number'),
  accepted('map_hash_bucket_size', ['http'], 'size'),
  accepted('proxy_headers_hash_max_size', HTTP_SERVER_LOCATION, 'number'),
  accepted('proxy_headers_hash_bucket_size', HTTP_SERVER_LOCATION, 'size'),
  accepted('connection_pool_size', ['http', 'server'], 'size'),
  accepted('request_pool_size', ['http', 'server'], 'size'),
];
