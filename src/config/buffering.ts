/** Defaults of the body buffering settings (BufferingSettings): nginx merges each on its own. */
import { resolve } from 'node:path';
import type { BufferingSettings } from './types.js';

/**
 * nginx's defaults: request bodies read whole before the upstream is chosen, in memory up to
 * client_body_buffer_size; responses buffered in `proxy_buffers 8 4k` (one page each on x86-64
 * Linux) then in temp files up to 1024m. The temp directories are nginx's compiled-in names,
 * under the prefix (`client_body_temp`, `proxy_temp`).
 */
export function bufferingDefaults(prefix: string): BufferingSettings {
  return {
    requestBuffering: true,
    clientBodyTempPath: { path: resolve(prefix, 'client_body_temp'), levels: [] },
    clientBodyInFileOnly: 'off',
    clientBodyInSingleBuffer: false,
    proxySetBody: null,
    proxyMethod: null,
    ignoreClientAbort: false,
    ignoreHeaders: new Set<string>(),
    proxyBuffers: { number: 8, size: 4096 },
    busyBuffersSize: null,
    proxyTempPath: { path: resolve(prefix, 'proxy_temp'), levels: [] },
    maxTempFileSize: 1024 * 1024 * 1024,
    tempFileWriteSize: null,
  };
}
