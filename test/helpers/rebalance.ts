/** What the websocket_rebalance tests check of clients' placements and of close times. */

/** How many of `clients` are on each backend of `ids`. */
export function tally(clients: readonly { readonly backend: string }[], ids: readonly string[]): number[] {
  return ids.map((id) => clients.filter((c) => c.backend === id).length);
}

/** The rule the rebalancer keeps: each server within the tolerance of its share, or within one tunnel of it. */
export function withinTolerance(counts: readonly number[], tolerance: number): boolean {
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  return counts.every((c) => Math.abs(c - mean) < 1 || Math.abs(c - mean) <= tolerance * mean);
}

/** The most events in any window of `ms` (times in ms). */
export function maxInWindow(times: readonly number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}
