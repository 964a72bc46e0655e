import type { ServerConfig } from '../config/types.js';

export interface ServerMatch {
  readonly server: ServerConfig;
  readonly captures: readonly (string | undefined)[];
  readonly named: Readonly<Record<string, string | undefined>>;
}

const NO_CAPTURES: readonly (string | undefined)[] = Object.freeze([]);
const NO_NAMED: Readonly<Record<string, string | undefined>> = Object.freeze({});

/**
 * The servers sharing one listen address, compiled for nginx's server_name order:
 * exact name, longest leading wildcard, longest trailing wildcard, first regex, default server.
 */
export class ServerGroup {
  readonly defaultServer: ServerConfig;
  readonly #exact = new Map<string, ServerConfig>();
  readonly #suffixes: { suffix: string; server: ServerConfig }[] = [];
  readonly #prefixes: { prefix: string; server: ServerConfig }[] = [];
  readonly #regexes: { regex: RegExp; server: ServerConfig }[] = [];

  constructor(servers: readonly ServerConfig[], defaultServer: ServerConfig) {
    this.defaultServer = defaultServer;
    for (const s of servers) {
      for (const n of s.serverNames) {
        if (n.kind === 'exact') {
          if (!this.#exact.has(n.name)) this.#exact.set(n.name, s);
        } else if (n.kind === 'suffix') this.#suffixes.push({ suffix: n.suffix, server: s });
        else if (n.kind === 'prefix') this.#prefixes.push({ prefix: n.prefix, server: s });
        else this.#regexes.push({ regex: n.regex, server: s });
      }
    }
    this.#suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** `host` is lower-case without port; "" when the request had no Host. */
  select(host: string): ServerMatch {
    const exact = this.#exact.get(host);
    if (exact) return { server: exact, captures: NO_CAPTURES, named: NO_NAMED };
    if (host !== '') {
      for (const w of this.#suffixes) if (host.endsWith(w.suffix)) return { server: w.server, captures: NO_CAPTURES, named: NO_NAMED };
      for (const w of this.#prefixes) if (host.startsWith(w.prefix)) return { server: w.server, captures: NO_CAPTURES, named: NO_NAMED };
    }
    for (const r of this.#regexes) {
      const m = r.regex.exec(host);
      if (m) return { server: r.server, captures: [...m], named: m.groups ?? NO_NAMED };
    }
    return { server: this.defaultServer, captures: NO_CAPTURES, named: NO_NAMED };
  }
}
