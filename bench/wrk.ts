/** Runs wrk (in its own process group, bounded in time) and reads its summary. */
import { startChild } from './processes.js';

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSec: number;
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses. */
  readonly errors: number;
  readonly errorText: string;
  /** Latency percentiles in milliseconds (wrk's own, coordinated-omission caveats apply). */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function ms(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    case 'm':
      return v * 60_000;
    default:
      return NaN;
  }
}

export function parseWrk(out: string): WrkResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!done || !rps) throw new Error(`cannot read wrk's output:\n${out.slice(-800)}`);
  let errors = 0;
  const errorParts: string[] = [];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) {
    const n = Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
    if (n > 0) errorParts.push(sock[0]);
    errors += n;
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) {
    errors += Number(non2xx[1]);
    errorParts.push(non2xx[0]);
  }
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  return {
    requests: Number(done[1]),
    seconds: ms(done[2]!, done[3]!) / 1000,
    requestsPerSec: Number(rps[1]),
    errors,
    errorText: errorParts.join('; '),
    p50Ms: p50 ? ms(p50[1]!, p50[2]!) : NaN,
    p99Ms: p99 ? ms(p99[1]!, p99[2]!) : NaN,
  };
}

/** `wrk -t1 -cCONNS -dSECONDSs --latency URL`; killed if it runs 15 s past its duration. */
export async function runWrk(bin: string, url: string, conns: number, seconds: number): Promise<WrkResult> {
  const child = startChild('wrk', bin, ['-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '5s', '--latency', url]);
  const chunks: string[] = [];
  child.proc.stdout?.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.proc.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => void child.stop(), (seconds + 15) * 1000);
  try {
    const code = await exited;
    const out = chunks.join('');
    if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out.slice(-500)}\n${child.tail()}`);
    return parseWrk(out);
  } finally {
    clearTimeout(timer);
    await child.stop();
  }
}
