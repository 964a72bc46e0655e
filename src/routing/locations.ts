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

  /** Compiles the whole tree below `locations`, level by level (nesting may be thousands deep). */
  constructor(locations: readonly LocationConfig[]) {
    const pending: [LocationLevel, readonly LocationConfig[]][] = [[this, locations]];
    for (let job = pending.pop(); job !== undefined; job = pending.pop()) {
      const [level, list] = job;
      for (const l of list) {
        if (l.modifier === '=') level.#exact.set(l.pattern, l);
        else if (l.modifier === '' || l.modifier === '^~') level.#prefixes.push(l);
        else if (l.modifier === '~' || l.modifier === '~*') level.#regexes.push(l);
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
    /** The levels the prefix search went through, each with whether its prefix was `^~`. */
    const path: { readonly level: LocationLevel; readonly noregex: boolean }[] = [];
    search: for (;;) {
      path.length = 0;
      for (let at: LocationLevel | undefined = level; at !== undefined;) {
        const exact = at.#exact.get(uri);
        if (exact) return { location: exact, captures: NONE, named: NO_NAMED };
        const p = at.#prefixes.find((x) => uri.startsWith(x.pattern));
        path.push({ level: at, noregex: p?.modifier === '^~' });
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
