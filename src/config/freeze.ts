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

function freezeValue(value: unknown, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return value;
  if (value instanceof Map && !(value instanceof FrozenMap)) {
    const copy = new FrozenMap([...value].map(([k, v]) => [freezeValue(k, seen), freezeValue(v, seen)] as const));
    seen.add(copy);
    return Object.freeze(copy);
  }
  if (value instanceof Set && !(value instanceof FrozenSet)) {
    const copy = new FrozenSet([...value].map((v) => freezeValue(v, seen)));
    seen.add(copy);
    return Object.freeze(copy);
  }
  seen.add(value);
  if (!(value instanceof RegExp)) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const v = record[key];
      const frozen = freezeValue(v, seen);
      if (frozen !== v) record[key] = frozen;
    }
  }
  return Object.freeze(value);
}

/** Freezes `value` and everything reachable from it; returns it (Maps/Sets inside are replaced). */
export function deepFreeze<T>(value: T): T {
  return freezeValue(value, new WeakSet()) as T;
}
