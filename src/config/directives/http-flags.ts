/**
 * Flags of ngx_http_core_module that shape requests and responses: `server_tokens`,
 * `chunked_transfer_encoding`, the three redirect flags, and the request-head ones
 * (`merge_slashes`, `underscores_in_headers`, `ignore_invalid_headers`), which nginx allows in
 * http and server only.
 */
import type { Scope, SettingsDraft } from '../draft.js';
import type { CoreSettings } from '../types.js';
import { HTTP_SERVER_LOCATION, TAKE1, parseEnum, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

/** The core flags written at this level. */
export function coreOf(scope: Scope): NonNullable<SettingsDraft['core']> {
  return (settingsOf(scope).core ??= {});
}

type FlagKey = { [K in keyof CoreSettings]: CoreSettings[K] extends boolean ? K : never }[keyof CoreSettings];

function coreFlag(name: string, key: FlagKey, contexts: DirectiveSpec['contexts'] = HTTP_SERVER_LOCATION): DirectiveSpec {
  return {
    name, contexts, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) coreOf(scope)[key] = v;
    },
  };
}

export const httpFlagDirectives: readonly DirectiveSpec[] = [
  {
    name: 'server_tokens', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseEnum(d, d.args[0]!, ['on', 'off', 'build'] as const, cx);
      if (v !== null) coreOf(scope).serverTokens = v;
    },
  },
  coreFlag('chunked_transfer_encoding', 'chunkedTransferEncoding'),
  coreFlag('absolute_redirect', 'absoluteRedirect'),
  coreFlag('port_in_redirect', 'portInRedirect'),
  coreFlag('server_name_in_redirect', 'serverNameInRedirect'),
  coreFlag('merge_slashes', 'mergeSlashes', ['http', 'server']),
  coreFlag('underscores_in_headers', 'underscoresInHeaders', ['http', 'server']),
  coreFlag('ignore_invalid_headers', 'ignoreInvalidHeaders', ['http', 'server']),
];
