/**
 * The functions that allocated most in a sampling heap profile (V8's HeapProfiler.stopSampling),
 * each as "name file:line" (dist/ and node_modules/ paths shortened) with its bytes per unit of
 * work: `units` requests or handshakes. Used by request-cost.mjs and handshake-cost.mjs.
 */
export function allocationSites(profile, units, top) {
  const bySite = new Map();
  const walk = (node) => {
    const f = node.callFrame;
    const where = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}`;
    bySite.set(where, (bySite.get(where) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  return Object.fromEntries([...bySite].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Math.round(v / units)]));
}
