#!/usr/bin/env node
// Ratios to nginx of the handshake cells of benchmark runs (bench/results/RUN.jsonl): per cell and
// target, the median over repetitions of target/nginx with (min–max), each repetition's ratio
// taken within that repetition; absolute medians beside them, and the load average of each run.
//   node bench/experiments/c-handshake/ratios.mjs bench/results/RUN.jsonl [...]
import { readFileSync } from 'node:fs';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
const range = (xs) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

const cells = new Map(); // cell -> target -> rep -> metrics
for (const file of process.argv.slice(2)) {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const env = lines.find((l) => l.type === 'env');
  const end = lines.find((l) => l.type === 'run' && l.loadAvgEnd);
  console.log(`${file}: load average at start ${env?.loadAvg?.join(' ')}${end ? `, at end ${end.loadAvgEnd.join(' ')}` : ''}`);
  for (const r of lines) {
    if (r.type !== 'cell' || r.scenario !== 'handshakes') continue;
    const key = `${file}#${r.rep}`;
    if (!cells.has(r.cell)) cells.set(r.cell, new Map());
    const byTarget = cells.get(r.cell);
    if (!byTarget.has(r.target)) byTarget.set(r.target, new Map());
    byTarget.get(r.target).set(key, r.metrics);
    if (r.errors.length) console.log(`  errors: ${r.cell} ${r.target} ${key}: ${r.errors.join('; ')}`);
  }
}
for (const [cell, byTarget] of cells) {
  const nginx = byTarget.get('nginx');
  console.log(`\n${cell}`);
  console.log('target | handshakes/s | CPU µs/handshake | handshakes/s ÷ nginx | CPU ÷ nginx | CPU ÷ sluice | n');
  for (const [target, reps] of byTarget) {
    const hs = [], cpu = [], rh = [], rc = [], rs = [];
    for (const [key, m] of reps) {
      if (m.cpuUsPerHandshake === undefined) continue; // direct: no proxy
      hs.push(m.handshakesPerSec);
      cpu.push(m.cpuUsPerHandshake);
      const n = nginx?.get(key);
      if (n && target !== 'nginx') {
        rh.push(m.handshakesPerSec / n.handshakesPerSec);
        rc.push(m.cpuUsPerHandshake / n.cpuUsPerHandshake);
      }
      const sl = byTarget.get('sluice')?.get(key);
      if (sl && target !== 'sluice') rs.push(m.cpuUsPerHandshake / sl.cpuUsPerHandshake);
    }
    if (hs.length === 0) continue;
    console.log(`${target} | ${range(hs)} | ${range(cpu)} | ${rh.length ? range(rh) : '-'} | ${rc.length ? range(rc) : '-'} | ${rs.length ? range(rs) : '-'} | ${hs.length}`);
  }
  // The JavaScript call's share of the C path's CPU: (route in JS - route in C) / route in JS, per repetition.
  const js = byTarget.get('sluice-c-handshake');
  const c = byTarget.get('sluice-c-handshake-c-route');
  if (js && c) {
    const share = [];
    for (const [key, m] of js) if (c.has(key)) share.push(1 - c.get(key).cpuUsPerHandshake / m.cpuUsPerHandshake);
    if (share.length) console.log(`the JavaScript call's share of sluice-c-handshake's CPU per handshake: ${range(share)}`);
  }
}
