/**
 * Checks that need the whole configuration: the required `events` section, variables (maps may
 * be defined after use), and listen addresses across servers (nginx's "a duplicate listen" and
 * "a duplicate default server").
 */
import { isBuiltinVariable } from '../core/variable-names.js';
import type { BuildContext } from './build-context.js';
import type { MainDraft } from './draft.js';
import type { Listen } from './types.js';

/** nginx refuses a configuration without `events {}`; so does Sluice. */
export function checkEvents(main: MainDraft, mainFile: string, cx: BuildContext): void {
  if (main.events === null) {
    cx.problem('no "events" section in configuration', { file: mainFile, line: 0 },
      'add "events {}" to the main context (it may be empty)');
  }
}

/** Every `$name` must be built in or defined by a map; reported once per name and line. */
export function checkVariables(cx: BuildContext): void {
  const reported = new Set<string>();
  for (const ref of cx.variableRefs) {
    if (isBuiltinVariable(ref.name) || cx.mapVariables.has(ref.name)) continue;
    const key = `${ref.name}\0${ref.at.file}\0${ref.at.line}`;
    if (reported.has(key)) continue;
    reported.add(key);
    cx.problem(`unknown "${ref.name}" variable`, ref.at,
      `define it with "map SOURCE $${ref.name} { ... }" in http {}, or use a built-in variable (see docs/configuration.md)`);
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
