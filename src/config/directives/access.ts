/**
 * ngx_http_access_module: `allow ADDRESS | CIDR | all;` and `deny ...;` in http, server and
 * location. The lines of one level form one ordered list (first match wins); a level with any
 * line of its own inherits none from above (resolve.ts).
 */
import { locOf } from '../build-context.js';
import type { BuildContext } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import { parseCidr } from '../../core/cidr.js';
import { HTTP_SERVER_LOCATION, TAKE1, settingsOf, type DirectiveSpec } from './table.js';

function accessRule(d: Directive, scope: Scope, cx: BuildContext): void {
  const text = d.args[0]!;
  const deny = d.name === 'deny';
  const rules = (settingsOf(scope).access ??= []);
  if (text === 'all') {
    rules.push({ deny, family: 'all', addr: [], mask: [], text, loc: locOf(d) });
    return;
  }
  if (text === 'unix:') {
    cx.problem(`invalid parameter "${text}"`, d, 'Sluice listens on TCP only, so there are no unix: clients; remove this line');
    return;
  }
  const cidr = parseCidr(text);
  if (cidr === null) {
    cx.problem(`invalid parameter "${text}"`, d,
      `"${d.name}" takes an IP address, a network in CIDR form ("10.0.0.0/8", "2001:db8::/32") or "all"; host names are not accepted`);
    return;
  }
  // nginx warns "low address bits of X are meaningless" and uses the masked network; so does
  // Sluice (without the warning, which -t has no channel for yet).
  rules.push({ deny, family: cidr.family, addr: cidr.addr, mask: cidr.mask, text, loc: locOf(d) });
}

export const accessDirectives: readonly DirectiveSpec[] = [
  { name: 'allow', contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true, handle: accessRule },
  { name: 'deny', contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true, handle: accessRule },
];

/** ngx_http_auth_basic_module: `auth_basic REALM | off;` and `auth_basic_user_file FILE;`. */
export const authBasicDirectives: readonly DirectiveSpec[] = [
  {
    name: 'auth_basic', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      settingsOf(scope).authBasicRealm = d.args[0] === 'off' ? null : d.args[0]!;
    },
  },
  {
    name: 'auth_basic_user_file', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      // Read at request time (routing/auth-basic.ts), so a missing file is the request's 500, as in nginx.
      settingsOf(scope).authBasicUserFile = cx.path(d.args[0]!);
    },
  },
];
