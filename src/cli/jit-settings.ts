/**
 * When the `sluice` command's V8 compiles its hot functions with its optimising compiler
 * (TurboFan): at a quarter of V8's default threshold, set by cli/main.ts before the proxy's code
 * runs, in the primary and in every worker (each runs cli/main.ts).
 *
 * Why: a freshly started process runs the per-handshake JavaScript (routing, the upstream head,
 * the 101's header rules, the log record) unoptimised until V8 has seen it run often enough. One
 * process reaches that within its first second of a reconnect storm; two workers each see half
 * the handshakes and took about ten seconds: after one second their JavaScript threads spent
 * twice one process's user time per handshake (docs/benchmarks.md, "Where Sluice stands (full run
 * of 2026-12-05 18:35...)"). Tiering up at a quarter of the threshold took about a third off
 * that (Node 20 and 22, two workers, 50 openers, one and a half seconds after the start), and
 * 10-19 % off the workers' CPU per handshake in the benchmark ("Optimising sooner"); warmed up,
 * the two thresholds measured within the run-to-run spread of each other.
 *
 * The threshold is a different flag per V8 line: `--interrupt-budget` (bytecode executed; V8 11.3,
 * Node 20) and `--invocation-count-for-turbofan` (calls; V8 12 and later, Node 22 and later).
 * On another V8 line (Node 21) nothing is set: V8 prints an error for a flag it does not know.
 * The operator's own setting (either flag in Node's arguments or NODE_OPTIONS) is left alone;
 * `SLUICE_V8_JIT=default` leaves V8's thresholds (the benchmark's `sluice-jit-default` targets).
 * Library users (`startProxy`) own their process and are not touched.
 */
import { setFlagsFromString } from 'node:v8';
import { jitFlags } from './jit-flags.js';

const flags = jitFlags(process.versions.v8, process.execArgv, process.env);
if (flags !== null) setFlagsFromString(flags);
