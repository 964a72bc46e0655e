#!/usr/bin/env node
/**
 * Self time of a `.cpuprofile` (node --cpu-prof) summed by category, in percent of the busy
 * samples (idle excluded) and, with `--per N`, in µs per unit of work (N handshakes, say):
 * Sluice's own JavaScript (dist/src/*), Node's internals (node:*), other packages
 * (node_modules), the garbage collector, (program) (V8 and native code outside a JavaScript
 * frame: the addon's calls, the compiler...). `--top K` adds the K functions with the most self
 * time. Several files are summed (one process's profile per file).
 *
 *   node scripts/cpu-profile-summary.mjs FILE.cpuprofile... [--per 3000] [--top 15]
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i < 0 ? dflt : args[i + 1]; };
const per = Number(opt('--per', '0'));
const top = Number(opt('--top', '0'));
const files = args.filter((a, i) => !a.startsWith('--') && !['--per', '--top'].includes(args[i - 1]));

/** The category of a frame, by its function name and script URL. */
function category(f) {
  if (f.functionName === '(garbage collector)') return 'gc';
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(program)') return 'program';
  if (f.functionName === '(root)') return 'root';
  if (/\/dist\/src\//.test(f.url)) return 'sluice';
  if (/node_modules\//.test(f.url)) return 'packages';
  if (f.url.startsWith('node:')) return 'node';
  if (f.url === '') return 'native builtins';
  return 'other';
}

const byCat = {};
const byFn = new Map();
let totalUs = 0;
for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time: each sample's time delta goes to the node it landed in.
  for (let i = 0; i < p.samples.length; i++) {
    const n = nodes.get(p.samples[i]);
    const dt = p.timeDeltas[i] ?? 0;
    const c = category(n.callFrame);
    byCat[c] = (byCat[c] ?? 0) + dt;
    if (c !== 'idle') {
      totalUs += dt;
      const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + dt);
    }
  }
}
const out = { busyMs: Math.round(totalUs / 1000), percentOfBusy: {}, ...(per > 0 ? { usPerUnit: {} } : {}) };
for (const [c, us] of Object.entries(byCat).sort((a, b) => b[1] - a[1])) {
  if (c === 'idle') continue;
  out.percentOfBusy[c] = Number(((100 * us) / totalUs).toFixed(1));
  if (per > 0) out.usPerUnit[c] = Number((us / per).toFixed(1));
}
if (per > 0) out.usPerUnit.busy = Number((totalUs / per).toFixed(1));
if (top > 0) out.top = Object.fromEntries([...byFn].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Number(((100 * v) / totalUs).toFixed(1))]));
console.log(JSON.stringify(out, null, 1));
