/** ngx_http_headers_module's `add_header`. */
import { TAKE23, HTTP_SERVER_LOCATION, settingsOf, type DirectiveSpec } from './table.js';

export const headersDirectives: readonly DirectiveSpec[] = [
  {
    name: 'add_header', contexts: HTTP_SERVER_LOCATION, args: TAKE23, repeatable: true,
    handle(d, scope, cx) {
      const [name, raw, flag] = d.args;
      if (flag !== undefined && flag !== 'always') {
        cx.problem(`invalid parameter "${flag}"`, d, 'the only parameter of "add_header" is "always"');
        return;
      }
      const value = cx.headerField(name!, raw!, d);
      if (value === null) return;
      (settingsOf(scope).addHeaders ??= []).push({ name: name!, value, always: flag === 'always' });
    },
  },
];
