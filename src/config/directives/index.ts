/** Every directive Sluice accepts, by name (one name may have entries for different contexts). */
import { accessDirectives, authBasicDirectives } from './access.js';
import { adminDirectives } from './admin.js';
import { balancingDirectives } from './balancing.js';
import { bufferingDirectives } from './buffering.js';
import { charsetDirectives } from './charset.js';
import { clientDirectives } from './client.js';
import { coreDirectives } from './core.js';
import { gzipDirectives } from './gzip.js';
import { filesDirectives } from './files.js';
import { headersDirectives } from './headers.js';
import { healthCheckDirectives } from './health-check.js';
import { httpCoreDirectives } from './http-core.js';
import { httpFlagDirectives } from './http-flags.js';
import { logDirectives } from './log.js';
import { mapDirectives } from './map.js';
import { processDirectives } from './process.js';
import { proxyDirectives } from './proxy.js';
import { realIpDirectives } from './realip.js';
import { rewriteDirectives } from './rewrite.js';
import { sslDirectives } from './ssl.js';
import type { DirectiveSpec } from './table.js';
import { tuningDirectives } from './tuning.js';
import { upstreamDirectives } from './upstream.js';

export const ALL_DIRECTIVES: readonly DirectiveSpec[] = [
  ...coreDirectives,
  ...processDirectives,
  ...httpCoreDirectives,
  ...clientDirectives,
  ...filesDirectives,
  ...httpFlagDirectives,
  ...rewriteDirectives,
  ...headersDirectives,
  ...charsetDirectives,
  ...gzipDirectives,
  ...logDirectives,
  ...mapDirectives,
  ...upstreamDirectives,
  ...balancingDirectives,
  ...healthCheckDirectives,
  ...proxyDirectives,
  ...bufferingDirectives,
  ...sslDirectives,
  ...accessDirectives,
  ...authBasicDirectives,
  ...realIpDirectives,
  ...adminDirectives,
  ...tuningDirectives,
];

export const DIRECTIVES_BY_NAME: ReadonlyMap<string, readonly DirectiveSpec[]> = (() => {
  const byName = new Map<string, DirectiveSpec[]>();
  for (const spec of ALL_DIRECTIVES) {
    const list = byName.get(spec.name) ?? [];
    list.push(spec);
    byName.set(spec.name, list);
  }
  return byName;
})();
