/**
 * Deep freezing of the finished Config. Maps and Sets are replaced by subclasses whose mutators
 * throw, since Object.freeze does not stop Map#set; RegExps are frozen too (Sluice never uses the
 * `g` or `y` flags, so `test`/`exec` never write `lastIndex`).
 */

class FrozenMap<K, V> extends Map<K, V> {
  private readonly sealed: boolean;
  constructor(entries: Iterable<readonly [K, V]>) {
    super(entries);
    this.sealed = true;
  }
  override set(key: K, value: V): this {
    if (this.sealed) throw new TypeError('Cannot modify a frozen Map');
    return super.set(key, value);
  }
  override delete(): boolean {
    throw new TypeError('Cannot modify a frozen Map');
  }
  override clear(): void {
    throw new TypeError('Cannot modify a frozen Map');
  }
}

class FrozenSet<T> extends Set<T> {
  private readonly sealed: boolean;
  constructor(values: Iterable<T>) {
    super(values);
    this.sealed = true;
  }
  override add(value: T): this {
    if (this.sealed) throw new TypeError('Cannot modify a frozen Set');
    return super.add(value);
  }
  override delete(): boolean {
    throw new TypeError('Cannot modify a frozen Set');
  }
  override clear(): void {
    throw new TypeError('Cannot modify a frozen Set');
  }
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}

/** What an object holds that must be frozen before it (Map and Set contents, own properties). */
function childrenOf(value: object): unknown[] {
  if (value instanceof Map && !(value instanceof FrozenMap)) return [...value.keys(), ...value.values()];
  if (value instanceof Set && !(value instanceof FrozenSet)) return [...value];
  if (value instanceof RegExp) return [];
  const record = value as Record<string, unknown>;
  return Object.keys(record).map((key) => record[key]);
}

/**
 * Freezes `value` and everything reachable from it; returns it (Maps/Sets inside are replaced).
 * Children are frozen before their parents with an explicit stack rather than recursion: a
 * config may nest locations thousands deep.
 */
export function deepFreeze<T>(value: T): T {
  /** Each finished object, and what replaces it (itself, or the frozen copy of a Map or Set). */
  const done = new Map<object, unknown>();
  const entered = new Set<object>();
  const stack: { readonly obj: object; expanded: boolean }[] = [];
  const visit = (v: unknown): void => {
    if (!isObject(v) || entered.has(v)) return;
    entered.add(v);
    stack.push({ obj: v, expanded: false });
  };
  // An object still in progress (a reference cycle) stays as it is.
  const result = (v: unknown): unknown => (isObject(v) && done.has(v) ? done.get(v) : v);
  visit(value);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (!top.expanded) {
      top.expanded = true;
      for (const child of childrenOf(top.obj)) visit(child);
      continue;
    }
    stack.pop();
    const obj = top.obj;
    if (obj instanceof Map && !(obj instanceof FrozenMap)) {
      const copy = Object.freeze(new FrozenMap([...obj].map(([k, v]) => [result(k), result(v)] as const)));
      done.set(obj, copy);
    } else if (obj instanceof Set && !(obj instanceof FrozenSet)) {
      done.set(obj, Object.freeze(new FrozenSet([...obj].map(result))));
    } else {
      if (!(obj instanceof RegExp)) {
        const record = obj as Record<string, unknown>;
        for (const key of Object.keys(record)) {
          const v = record[key];
          const frozen = result(v);
          if (frozen !== v) record[key] = frozen;
        }
      }
      done.set(obj, Object.freeze(obj));
    }
  }
  return result(value) as T;
}
