#!/usr/bin/env node
// Fails when the modules under src/ import each other in a cycle (`import type` included: a type
// cycle is a design cycle too). Part of `npm test`; plain JavaScript, so it needs no build.
//
//   node scripts/check-cycles.mjs          every cycle, as FILE -> FILE -> ... chains; exit 1 if any
//   node scripts/check-cycles.mjs DIR      the same for the modules under DIR instead of src/
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = resolve(process.argv[2] ?? join(root, 'src'));

function sources(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

const files = sources(src);
const known = new Set(files);
/** @type {Map<string, string[]>} */
const edges = new Map();
for (const f of files) {
  const text = readFileSync(f, 'utf8');
  const to = new Set();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
    if (known.has(target)) to.add(target);
  }
  edges.set(f, [...to]);
}

// Tarjan's strongly connected components, iteratively (no recursion limit on a deep graph).
let index = 0;
const idx = new Map();
const low = new Map();
const onStack = new Set();
const stack = [];
const components = [];
for (const start of files) {
  if (idx.has(start)) continue;
  const work = [[start, 0]];
  idx.set(start, index); low.set(start, index); index++;
  stack.push(start); onStack.add(start);
  while (work.length > 0) {
    const top = work[work.length - 1];
    const [v, i] = top;
    const out = edges.get(v);
    if (i < out.length) {
      top[1]++;
      const w = out[i];
      if (!idx.has(w)) {
        idx.set(w, index); low.set(w, index); index++;
        stack.push(w); onStack.add(w);
        work.push([w, 0]);
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
      continue;
    }
    work.pop();
    if (work.length > 0) {
      const parent = work[work.length - 1][0];
      low.set(parent, Math.min(low.get(parent), low.get(v)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || edges.get(v).includes(v)) components.push(comp);
    }
  }
}

const name = (f) => {
  const rel = relative(root, f);
  return (rel.startsWith('..') ? f : rel).split(sep).join('/');
};
if (components.length === 0) {
  process.stdout.write(`sluice cycles: no import cycle among ${files.length} modules in ${name(src)}/\n`);
  process.exit(0);
}
for (const comp of components) {
  // The shortest cycle through the component's first module, for the message (breadth first).
  const inComp = new Set(comp);
  const first = [...comp].sort()[0];
  const from = new Map();
  const queue = [first];
  let end = null;
  while (queue.length > 0 && end === null) {
    const v = queue.shift();
    for (const w of edges.get(v)) {
      if (!inComp.has(w)) continue;
      if (w === first) { end = v; break; }
      if (!from.has(w)) { from.set(w, v); queue.push(w); }
    }
  }
  const path = [];
  for (let v = end; v !== first && v !== null; v = from.get(v)) path.unshift(v);
  path.unshift(first);
  process.stderr.write(`sluice cycles: ${comp.length} modules import each other: ${[...path, first].map(name).join(' -> ')}\n`);
}
process.stderr.write('sluice cycles: move what both sides need into a module of its own (see docs/architecture.md)\n');
process.exit(1);
