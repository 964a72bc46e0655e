/**
 * `server_tokens`: what the Server header and the footer of Sluice's own pages say. nginx's `off`
 * says "nginx", `on` "nginx/1.22.1", `build` adds the build name; Sluice says "sluice" by default
 * (its `off`), "sluice/0.1.0" with `on` and "sluice/0.1.0 (node v20.20.2)" with `build`.
 */
import type { Settings } from '../../config/types.js';
import { SLUICE_VERSION } from '../../core/version.js';

const OFF = 'sluice';
const ON = `sluice/${SLUICE_VERSION}`;
const BUILD = `${ON} (node ${process.version})`;

/** The Server header value (and error page footer) under these settings; null settings: the default. */
export function serverSignature(settings: Settings | null | undefined): string {
  const t = settings?.core.serverTokens;
  return t === 'on' ? ON : t === 'build' ? BUILD : OFF;
}
