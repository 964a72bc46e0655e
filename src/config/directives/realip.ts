/**
 * ngx_http_realip_module: `set_real_ip_from` (trusted addresses), `real_ip_header` (the header
 * they name the client in) and `real_ip_recursive`. The lines of `set_real_ip_from` at one level
 * form one list; a level with any of its own inherits none (resolve.ts).
 */
import { parseCidr } from '../../core/cidr.js';
import { HTTP_SERVER_LOCATION, TAKE1, parseFlag, settingsOf, type DirectiveSpec } from './table.js';

export const realIpDirectives: readonly DirectiveSpec[] = [
  {
    name: 'set_real_ip_from', contexts: HTTP_SERVER_LOCATION, args: TAKE1, repeatable: true,
    handle(d, scope, cx) {
      const text = d.args[0]!;
      if (text === 'unix:') {
        cx.problem(`invalid parameter "${text}"`, d, 'Sluice listens on TCP only, so there are no unix: clients; remove this line');
        return;
      }
      const cidr = parseCidr(text);
      if (cidr === null) {
        cx.problem(`invalid parameter "${text}"`, d, '"set_real_ip_from" takes an IP address or a network in CIDR form ("10.0.0.0/8"); host names are not accepted');
        return;
      }
      (settingsOf(scope).realIpFrom ??= []).push(cidr);
    },
  },
  {
    name: 'real_ip_header', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope) {
      // `proxy_protocol` (as written) names the PROXY header of a `listen ... proxy_protocol` connection.
      settingsOf(scope).realIpHeader = d.args[0]!.toLowerCase();
    },
  },
  {
    name: 'real_ip_recursive', contexts: HTTP_SERVER_LOCATION, args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) settingsOf(scope).realIpRecursive = v;
    },
  },
];
