/** nginx's merge of a group of directives that are each inherited on their own: a value written at this level wins. */
export function mergeEach<T extends object>(parent: T, own: Partial<T> | undefined): T {
  if (own === undefined) return parent;
  const out = { ...parent };
  for (const [k, v] of Object.entries(own)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
