import type { LocationConfig } from '../config/types.js';

export interface LocationMatch {
  readonly location: LocationConfig;
  readonly captures: readonly (string | undefined)[];
  readonly named: Readonly<Record<string, string | undefined>>;
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

  constructor(locations: readonly LocationConfig[]) {
    for (const l of locations) {
      if (l.modifier === '=') this.#exact.set(l.pattern, l);
      else if (l.modifier === '' || l.modifier === '^~') this.#prefixes.push(l);
      else if (l.modifier === '~' || l.modifier === '~*') this.#regexes.push(l);
      if (l.locations.length > 0) this.#children.set(l, new LocationLevel(l.locations));
    }
    this.#prefixes.sort((a, b) => b.pattern.length - a.pattern.length);
  }

  /**
   * nginx's ngx_http_core_find_location: an exact (`=`) match wins; otherwise the longest prefix, searched recursively into its nested locations (where an
   * exact or regex match is final);
   * then, unless that prefix is `^~`, the regexes of this level in file order (recursing into
   * the one that matches); otherwise the deepest prefix found.
   */
  find(uri: string): LocationMatch | null {
    return this.#find(uri, null).match;
  }

  #find(uri: string, current: LocationMatch | null): { final: boolean; match: LocationMatch | null } {
    const exact = this.#exact.get(uri);
    if (exact) return { final: true, match: { location: exact, captures: NONE, named: NO_NAMED } };
    let noregex = false;
    for (const p of this.#prefixes) {
      if (!uri.startsWith(p.pattern)) continue;
      current = { location: p, captures: NONE, named: NO_NAMED };
      noregex = p.modifier === '^~';
      const nested = this.#children.get(p);
      if (nested) {
        const inner = nested.#find(uri, current);
        if (inner.final) return inner;
        current = inner.match;
      }
      break;
    }
    if (!noregex) {
      for (const r of this.#regexes) {
        const m = (r.regex as RegExp).exec(uri);
        if (!m) continue;
        const found: LocationMatch = { location: r, captures: [...m], named: m.groups ?? NO_NAMED };
        const nested = this.#children.get(r);
        return { final: true, match: nested ? nested.#find(uri, found).match : found };
      }
    }
    return { final: false, match: current };
  }
}
