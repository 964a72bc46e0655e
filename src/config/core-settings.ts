/** Defaults and merging of the core flags (CoreSettings): nginx merges each on its own. */
import { mergeEach } from './merge.js';
import type { CoreSettings } from './types.js';

export const CORE_DEFAULTS: CoreSettings = Object.freeze<CoreSettings>({
  // Sluice's default: "Server: sluice" without a version (nginx's default is on).
  serverTokens: 'off',
  expires: null,
  chunkedTransferEncoding: true,
  absoluteRedirect: true,
  portInRedirect: true,
  serverNameInRedirect: false,
  mergeSlashes: true,
  underscoresInHeaders: false,
  ignoreInvalidHeaders: true,
  openLogFileCache: null,
  errorPages: null,
  recursiveErrorPages: false,
  proxyInterceptErrors: false,
});

/** A value written at this level wins (`expires off` is written as null and wins too). */
export function mergeCore(parent: CoreSettings, own: Partial<CoreSettings> | undefined): CoreSettings {
  return mergeEach(parent, own);
}
