/** Every directive Sluice accepts, by name (one name may have entries for different contexts). */
import { accessDirectives, authBasicDirectives } from './access.js';
import { forwardProxyDirectives } from './forward-proxy.js';
import { adminDirectives } from './admin.js';
import { balancingDirectives } from './balancing.js';
import { cacheDirectives } from './cache.js';
import { bufferingDirectives } from './buffering.js';
import { charsetDirectives } from './charset.js';
import { clientDirectives } from './client.js';
import { coreDirectives } from './core.js';
import { errorPageDirectives } from './error-pages.js';
import { gzipDirectives } from './gzip.js';
import { fastcgiDirectives } from './fastcgi.js';
import { filesDirectives } from './files.js';
import { fleetDirectives } from './fleet.js';
import { headersDirectives } from './headers.js';
import { healthCheckDirectives } from './health-check.js';
import { httpCoreDirectives } from './http-core.js';
import { httpFlagDirectives } from './http-flags.js';
import { limitDirectives } from './limits.js';
import { logDirectives } from './log.js';
import { mapDirectives } from './map.js';
import { processDirectives } from './process.js';
import { proxyDirectives } from './proxy.js';
import { proxyCookieDirectives } from './proxy-cookie.js';
import { realIpDirectives } from './realip.js';
import { rebalanceDirectives } from './rebalance.js';
import { resolverDirectives } from './resolver.js';
import { rewriteDirectives } from './rewrite.js';
import { sslDirectives } from './ssl.js';
import { ssiDirectives } from './ssi.js';
import type { DirectiveSpec } from './table.js';
import { tuningDirectives } from './tuning.js';
import { upstreamDirectives } from './upstream.js';
import { websocketDirectives } from './websocket.js';

export const ALL_DIRECTIVES: readonly DirectiveSpec[] = [
  ...coreDirectives,
  ...processDirectives,
  ...fleetDirectives,
  ...httpCoreDirectives,
  ...clientDirectives,
  ...filesDirectives,
  ...httpFlagDirectives,
  ...errorPageDirectives,
  ...rewriteDirectives,
  ...headersDirectives,
  ...charsetDirectives,
  ...gzipDirectives,
  ...ssiDirectives,
  ...logDirectives,
  ...mapDirectives,
  ...upstreamDirectives,
  ...balancingDirectives,
  ...healthCheckDirectives,
  ...rebalanceDirectives,
  ...proxyDirectives,
  ...fastcgiDirectives,
  ...cacheDirectives,
  ...resolverDirectives,
  ...proxyCookieDirectives,
  ...bufferingDirectives,
  ...sslDirectives,
  ...accessDirectives,
  ...authBasicDirectives,
  ...realIpDirectives,
  ...limitDirectives,
  ...adminDirectives,
  ...tuningDirectives,
  ...websocketDirectives,
  ...forwardProxyDirectives,
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
