/**
 * Checks that need the whole configuration: the required `events` section, variables (maps may
 * be defined after use), listen addresses across servers (nginx's "a duplicate listen" and
 * "a duplicate default server") and upstream zones shared by name.
 */
import { NGINX_ONLY_VARIABLES, isBuiltinVariable } from '../core/variable-names.js';
import type { BuildContext } from './build-context.js';
import type { MainDraft, UpstreamDraft } from './draft.js';
import type { Listen, ServerConfig, SourceLoc } from './types.js';
import { defaultServers } from './default-server.js';

/** nginx refuses a configuration without `events {}`; so does Sluice. */
export function checkEvents(main: MainDraft, mainFile: string, cx: BuildContext): void {
  if (main.events === null) {
    cx.problem('no "events" section in configuration', { file: mainFile, line: 0 },
      'add "events {}" to the main context (it may be empty)');
  }
}

/**
 * Every `$name` must be built in, defined by a map or a `set`, or a named capture of some regex (as in nginx);
 * reported once per name and line.
 */
export function checkVariables(cx: BuildContext): void {
  const reported = new Set<string>();
  for (const ref of cx.variableRefs) {
    if (isBuiltinVariable(ref.name) || cx.mapVariables.has(ref.name) || cx.captureVariables.has(ref.name) || cx.setVariables.has(ref.name)) continue;
    const key = `${ref.name}\0${ref.at.file}\0${ref.at.line}`;
    if (reported.has(key)) continue;
    reported.add(key);
    const nginxOnly = NGINX_ONLY_VARIABLES.get(ref.name);
    cx.problem(`unknown "${ref.name}" variable`, ref.at, nginxOnly !== undefined
      ? `$${ref.name} is nginx's, from a module Sluice does not support: ${nginxOnly}`
      : `define it with "map SOURCE $${ref.name} { ... }" in http {} or "set $${ref.name} VALUE;", or use a built-in variable (see docs/configuration.md)`);
  }
}

/**
 * Per address, a server may listen once, and at most one server may be `default_server`.
 * `servers` are in config order.
 */
export function checkListens(servers: readonly { readonly listens: readonly Listen[] }[], cx: BuildContext): void {
  const defaults = new Map<string, Listen>();
  for (const server of servers) {
    const own = new Set<string>();
    for (const listen of server.listens) {
      if (own.has(listen.key)) {
        cx.problem(`a duplicate listen ${listen.key}`, listen.loc, 'this server already listens on that address; remove one of the listen lines');
        continue;
      }
      own.add(listen.key);
      if (!listen.defaultServer) continue;
      const previous = defaults.get(listen.key);
      if (previous !== undefined) {
        cx.problem(`a duplicate default server for ${listen.key}`, listen.loc,
          `${previous.loc.file}:${previous.loc.line} already marks a default_server for this address; keep one`);
        continue;
      }
      defaults.set(listen.key, listen);
    }
  }
}

/**
 * A forward proxy answers the requests that name another host (CONNECT, absolute-form): on an
 * address, the default server gets them, so `forward_proxy on` anywhere else would never work.
 */
export function checkForwardProxies(servers: readonly ServerConfig[], cx: BuildContext): void {
  const defaults = defaultServers(servers);
  for (const server of servers) {
    if (!server.settings.forwardProxy.on) continue;
    for (const listen of server.listens) {
      if (defaults.get(listen.key) === server) continue;
      cx.problem(`"forward_proxy" needs the default server of ${listen.key}`, server.loc,
        `mark this server's listen ${listen.key} default_server, or give the forward proxy an address of its own (listen 3128)`);
    }
  }
}

/**
 * nginx's shared memory rules for `zone` (ngx_shared_memory_add): upstreams may share a zone by
 * name; a size given twice must agree, and some line must give one. Returns the size of each zone.
 */
export function checkZones(upstreams: readonly UpstreamDraft[], cx: BuildContext): Map<string, number> {
  const zones = new Map<string, { size: number; readonly at: SourceLoc }>();
  for (const u of upstreams) {
    const zone = u.zone;
    if (zone === null) continue;
    const known = zones.get(zone.name);
    if (known === undefined) {
      zones.set(zone.name, { size: zone.size, at: zone.at });
    } else if (known.size === 0) {
      known.size = zone.size;
    } else if (zone.size !== 0 && zone.size !== known.size) {
      cx.problem(`the size ${zone.size} of shared memory zone "${zone.name}" conflicts with already declared size ${known.size}`, zone.at,
        `upstreams that share zone "${zone.name}" must give it one size; drop the size here or make them equal`);
    }
  }
  const sizes = new Map<string, number>();
  for (const [name, z] of zones) {
    if (z.size === 0) {
      cx.problem(`zero size shared memory zone "${name}"`, z.at, `give the zone a size in one of its lines, e.g. "zone ${name} 64k;"`);
    }
    sizes.set(name, z.size);
  }
  return sizes;
}
