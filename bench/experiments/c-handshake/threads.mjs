#!/usr/bin/env node
// Where a target's CPU per handshake goes, thread by thread: starts the benchmark's echo backend
// and one target (dist/bench/targets.js), runs N openers in this process (connect, handshake,
// close frame, close, as the benchmark's driver) for a window, and prints the target's CPU per
// handshake and context switches per handshake for each of its threads (/proc/PID/task; the
// relay's thread and Node's own threads are named "node", the experiment's "chs-handshake").
//   npm run build && node bench/experiments/c-handshake/threads.mjs TARGET [OPENERS] [SECONDS]
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { startBackend, startTarget } from '../../../dist/bench/targets.js';
import { CLOSE_FRAME, handshakeRequest } from '../../../dist/bench/ws-frames.js';

const [target = 'sluice-c-handshake', openers = '50', seconds = '8'] = process.argv.slice(2);
const TICK_US = 1e6 / 100; // USER_HZ

function threads(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const cs = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)[1]);
      out.set(tid, {
        name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() + (tid === String(pid) ? ' (main)' : ''),
        cpuUs: (Number(f[11]) + Number(f[12])) * TICK_US,
        switches: cs('voluntary_ctxt_switches') + cs('nonvoluntary_ctxt_switches'),
      });
    } catch {
      // the thread ended
    }
  }
  return out;
}

function handshakeOnce(port) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let head = Buffer.alloc(0);
    s.setNoDelay(true);
    s.on('error', reject);
    s.on('connect', () => s.write(handshakeRequest(`127.0.0.1:${port}`, '/')));
    s.on('data', (c) => {
      if (head === null) return;
      head = Buffer.concat([head, c]);
      if (head.indexOf('\r\n\r\n') < 0) return;
      if (!head.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) return reject(new Error(head.toString('latin1')));
      head = null;
      s.on('close', resolve);
      s.end(CLOSE_FRAME);
    });
  });
}

const backend = await startBackend();
const t = await startTarget(target, backend.port, {});
try {
  let running = true;
  let count = 0;
  let measuring = false;
  const loop = async () => {
    while (running) {
      await handshakeOnce(t.port);
      if (measuring) count++;
    }
  };
  const loops = Array.from({ length: Number(openers) }, loop);
  await new Promise((r) => setTimeout(r, 1000));
  const before = threads(t.pid);
  measuring = true;
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  measuring = false;
  const after = threads(t.pid);
  const n = count;
  running = false;
  await Promise.all(loops);
  let total = 0;
  const rows = [];
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpuUs: 0, switches: 0 };
    const cpu = (a.cpuUs - b.cpuUs) / n;
    total += cpu;
    if (cpu > 0 || a.switches - b.switches > 0) rows.push(`${a.name.padEnd(24)} ${cpu.toFixed(1).padStart(8)} µs ${((a.switches - b.switches) / n).toFixed(2).padStart(6)} switches`);
  }
  console.log(`${target}, ${openers} openers, ${n} handshakes in ${seconds} s (${(n / Number(seconds)).toFixed(0)}/s), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(rows.join('\n'));
  console.log(`${'total'.padEnd(24)} ${total.toFixed(1).padStart(8)} µs per handshake`);
} finally {
  await t.stop();
  await backend.stop();
}
