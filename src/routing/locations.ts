import type { LocationConfig } from '../config/types.js';

export interface LocationMatch {
  readonly location: LocationConfig;
  readonly captures: readonly (string | undefined)[];
  readonly named: Readonly<Record<string, string | undefined>>;
  /**
   * nginx's auto_redirect: the URI is this prefix location's name without its final slash, and the
   * location proxies, so the answer is a 301 to the name (ngx_http_core_find_static_location's
   * NGX_DONE).
   */
  readonly redirect?: true;
}

const NONE: readonly (string | undefined)[] = Object.freeze([]);
const NO_NAMED: Readonly<Record<string, string | undefined>> = Object.freeze({});

/** One level of locations (a server's, or a location's nested ones), compiled once. */
export class LocationLevel {
  readonly #exact = new Map<string, LocationConfig>();
  /** Prefix locations, longest first. */
  readonly #prefixes: LocationConfig[] = [];
  readonly #regexes: LocationConfig[] = [];
  readonly #children = new Map<LocationConfig, LocationLevel>();
  /** Locations whose name ends in '/' and that proxy, by that name without the slash. */
  readonly #autoRedirect = new Map<string, LocationConfig>();

  /** Compiles the whole tree below `locations`, level by level (nesting may be thousands deep). */
  constructor(locations: readonly LocationConfig[]) {
    const pending: [LocationLevel, readonly LocationConfig[]][] = [[this, locations]];
    for (let job = pending.pop(); job !== undefined; job = pending.pop()) {
      const [level, list] = job;
      for (const l of list) {
        if (l.modifier === '=') level.#exact.set(l.pattern, l);
        else if (l.modifier === '' || l.modifier === '^~') level.#prefixes.push(l);
        else if (l.modifier === '~' || l.modifier === '~*') level.#regexes.push(l);
        // ngx_http_proxy_pass sets auto_redirect for a location whose name ends in '/' (nginx's
        // other *_pass handlers do too; Sluice has only proxy_pass).
        if ((l.modifier === '=' || l.modifier === '' || l.modifier === '^~') && l.pattern.length > 1 && l.pattern.endsWith('/') && l.settings.proxyPass != null) {
          const short = l.pattern.slice(0, -1);
          if (!level.#autoRedirect.has(short) || l.modifier !== '=') level.#autoRedirect.set(short, l);
        }
        if (l.locations.length > 0) {
          const child = new LocationLevel([]);
          level.#children.set(l, child);
          pending.push([child, l.locations]);
        }
      }
      level.#prefixes.sort((a, b) => b.pattern.length - a.pattern.length);
    }
  }

  /**
   * nginx's ngx_http_core_find_location, with loops where nginx recurses: an exact (`=`) match
   * wins; otherwise the longest prefix, searched into its nested locations (where an exact or
   * regex match is final); then, going back up, unless that level's prefix is `^~`, the regexes
   * of each level in file order (a match searches the regex's own nested locations and is
   * final); otherwise the deepest prefix found.
   */
  find(uri: string): LocationMatch | null {
    let level: LocationLevel = this;
    let current: LocationMatch | null = null;
    /** The levels with regexes the prefix search went through, each with whether its prefix was `^~`. */
    const path: { readonly level: LocationLevel; readonly noregex: boolean }[] = [];
    search: for (;;) {
      path.length = 0;
      for (let at: LocationLevel | undefined = level; at !== undefined;) {
        const exact = at.#exact.get(uri);
        if (exact) return { location: exact, captures: NONE, named: NO_NAMED };
        const p = at.#prefixes.find((x) => uri.startsWith(x.pattern));
        // Neither `location = /ws` nor a prefix named exactly /ws: a 301 to "/ws/" (before regexes).
        if (p?.pattern.length !== uri.length) {
          const auto = at.#autoRedirect.get(uri);
          if (auto !== undefined) return { location: auto, captures: NONE, named: NO_NAMED, redirect: true };
        }
        // Only a level with regexes has anything to try on the way back up.
        if (at.#regexes.length > 0) path.push({ level: at, noregex: p?.modifier === '^~' });
        if (p === undefined) break;
        current = { location: p, captures: NONE, named: NO_NAMED };
        at = at.#children.get(p);
      }
      for (let i = path.length - 1; i >= 0; i--) {
        const step = path[i]!;
        if (step.noregex) continue;
        for (const r of step.level.#regexes) {
          const m = (r.regex as RegExp).exec(uri);
          if (!m) continue;
          current = { location: r, captures: [...m], named: m.groups ?? NO_NAMED };
          const nested = step.level.#children.get(r);
          if (!nested) return current;
          level = nested;
          continue search;
        }
      }
      return current;
    }
  }
}
