/**
 * A log-bucketed histogram in the manner of HdrHistogram: values below 128 have a bucket each,
 * above that every power of two is split into 64 sub-buckets, so a recorded value is known to
 * within 1/64 (1.6 %) of itself. Values are non-negative integers (the harness records
 * microseconds) and are clamped to 2^32 - 1. Recording is one array increment, so the driver can
 * record every message; histograms from several drivers merge by adding counts.
 */

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64 sub-buckets per power of two
const LINEAR = SUB * 2; // 0..127 are exact
const MAX_VALUE = 0xffff_ffff;
const BUCKETS = LINEAR + (31 - SUB_BITS) * SUB;

function indexOf(v: number): number {
  if (v < LINEAR) return v;
  const msb = 31 - Math.clz32(v);
  const shift = msb - SUB_BITS;
  return LINEAR + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** The highest value that lands in bucket `i` (what percentiles report, as HdrHistogram does). */
function highestIn(i: number): number {
  if (i < LINEAR) return i;
  const shift = ((i - LINEAR) >> SUB_BITS) + 1;
  const sub = ((i - LINEAR) & (SUB - 1)) + SUB;
  return (sub + 1) * 2 ** shift - 1;
}

/** The serialised form, sparse: `[bucket, count]` pairs. */
export interface HistogramJSON {
  readonly buckets: readonly (readonly [number, number])[];
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Records one value (rounded, clamped to [0, 2^32 - 1]). */
  record(value: number): void {
    let v = Math.round(value);
    if (!(v >= 0)) v = 0;
    else if (v > MAX_VALUE) v = MAX_VALUE;
    this.#counts[indexOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = 0;
    this.sum = 0;
  }

  /** The value at percentile `p` (0..100): the top of its bucket, never above the largest value seen. NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.max(this.min, Math.min(highestIn(i), this.max));
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  merge(other: Histogram | HistogramJSON): void {
    const h = other instanceof Histogram ? other.toJSON() : other;
    for (const [i, c] of h.buckets) this.#counts[i]! += c;
    this.count += h.count;
    this.sum += h.sum;
    if (h.count > 0) {
      if (h.min < this.min) this.min = h.min;
      if (h.max > this.max) this.max = h.max;
    }
  }

  toJSON(): HistogramJSON {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.#counts[i]!;
      if (c > 0) buckets.push([i, c]);
    }
    return { buckets, count: this.count, min: this.count ? this.min : 0, max: this.max, sum: this.sum };
  }

  static fromJSON(h: HistogramJSON): Histogram {
    const out = new Histogram();
    out.merge(h);
    return out;
  }
}
