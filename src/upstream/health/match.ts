import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../../config/types.js';

/** What a probe saw, for `match` tests. */
export interface ProbeResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * nginx Plus `match` semantics: every `status`, `header` and `body` test must pass. Returns null
 * when they do, else what failed (for the error log).
 */
export function checkMatch(m: MatchConfig, r: ProbeResponse): string | null {
  for (const s of m.status) {
    const inRange = s.ranges.some(([lo, hi]) => r.status >= lo && r.status <= hi);
    if (inRange === s.negate) return `status ${r.status}`;
  }
  for (const h of m.headers) {
    const v = headerValue(r.headers, h.name);
    switch (h.op) {
      case 'present': if (v === undefined) return `header ${h.name} missing`; break;
      case 'absent': if (v !== undefined) return `header ${h.name} present`; break;
      case '=': if (v !== h.value) return `header ${h.name}: ${v ?? '(none)'}`; break;
      case '!=': if (v === h.value) return `header ${h.name}: ${v}`; break;
      case '~': if (v === undefined || !h.regex.test(v)) return `header ${h.name}: ${v ?? '(none)'}`; break;
      case '!~': if (v !== undefined && h.regex.test(v)) return `header ${h.name}: ${v}`; break;
    }
  }
  for (const b of m.body) {
    if (b.regex.test(r.body) === b.negate) return `body ${b.negate ? 'matches' : 'does not match'} ${b.regex.source}`;
  }
  return null;
}

/** Whether any test of the match looks at the body (so the probe must read it). */
export function needsBody(m: MatchConfig | null): boolean {
  return m !== null && m.body.length > 0;
}
