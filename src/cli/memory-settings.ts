/**
 * How the `sluice` command's process holds its memory, set first by cli/main.ts, before any other
 * module allocates: V8's young generation kept at its initial size (1 MiB per semi-space on
 * 64-bit).
 *
 * Why: V8 grows the new space (doubling, up to 16 MiB per semi-space) once as many bytes have
 * survived scavenges as it holds, and does not give it back while the process is idle. A burst
 * of WebSocket handshakes does exactly that (every tunnel's context survives), so after 3,000
 * reconnecting clients a proxy kept about 30 MiB of empty nursery: 10 KiB per idle tunnel, more
 * than the tunnels themselves (docs/benchmarks.md, "Idle memory"). `--max-semi-space-size` would
 * cap it too, but V8 reads that one only when the heap is created, so only the operator could set
 * it (NODE_OPTIONS); `--semi-space-growth-factor` is read each time the new space would grow, so
 * the process can set it for itself. The price is more scavenges during a burst (ten times as
 * many); the process's CPU per handshake did not show it on the machine it was measured on (same
 * page, "Smaller idle tunnels").
 *
 * The young generation is left alone when the operator sized it (`--max-semi-space-size`,
 * `--min-semi-space-size`, `--semi-space-growth-factor` in Node's arguments or NODE_OPTIONS).
 * `SLUICE_V8_MEMORY=default` leaves it to V8 (the benchmark's `sluice-v8-default`). Library
 * users (`startProxy`) own their process and are not touched.
 */
import { setFlagsFromString } from 'node:v8';

/** Whether the process's V8 flags already size the young generation. */
function operatorSizedYoungGeneration(execArgv: readonly string[], nodeOptions: string): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--(max|min)[-_]semi[-_]space[-_]size|^--semi[-_]space[-_]growth[-_]factor/.test(a));
}

if (process.env.SLUICE_V8_MEMORY !== 'default' && !operatorSizedYoungGeneration(process.execArgv, process.env.NODE_OPTIONS ?? '')) {
  setFlagsFromString('--semi-space-growth-factor=1');
}
