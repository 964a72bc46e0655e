/**
 * Status content handlers: nginx's `stub_status` (ngx_http_stub_status_module) and Sluice's
 * `sluice_metrics` (Prometheus text), `sluice_status` (JSON) and `sluice_dashboard` (a live page).
 * Each makes its location answer locally instead of proxying; `allow` / `deny` protect it.
 */
import { locOf } from '../build-context.js';
import type { BuildContext } from '../build-context.js';
import type { Scope } from '../draft.js';
import type { Directive } from '../parser.js';
import type { AdminHandler } from '../types.js';
import { NOARGS, settingsOf, type DirectiveSpec } from './table.js';

function setHandler(handler: AdminHandler) {
  return (d: Directive, scope: Scope, cx: BuildContext): void => {
    const settings = settingsOf(scope);
    const prev = settings.adminHandler;
    if (prev !== undefined) {
      cx.problem(`"${d.name}" cannot be combined with "${prev.directive}" in one location`, d,
        `${prev.at.file}:${prev.at.line} already makes this location a status page; give each its own location`);
      return;
    }
    settings.adminHandler = { handler, directive: d.name, at: locOf(d) };
  };
}

const stubStatus = setHandler('stub_status');

export const adminDirectives: readonly DirectiveSpec[] = [
  {
    // nginx before 1.7.5 wanted an argument ("stub_status on") and still accepts and ignores one.
    name: 'stub_status', contexts: ['server', 'location'], args: [0, 1],
    handle(d, scope, cx) {
      if (d.args[0] === 'off') {
        cx.problem('invalid value "off" in "stub_status" directive', d,
          'nginx ignores the argument, so "stub_status off" would still serve the status; remove the line to turn it off');
        return;
      }
      stubStatus(d, scope, cx);
    },
  },
  { name: 'sluice_metrics', contexts: ['location'], args: NOARGS, handle: setHandler('metrics') },
  { name: 'sluice_status', contexts: ['location'], args: NOARGS, handle: setHandler('status') },
  { name: 'sluice_dashboard', contexts: ['location'], args: NOARGS, handle: setHandler('dashboard') },
];
