/**
 * Process-level directives of ngx_core_module and ngx_events_module: who the workers run as, the
 * limits and CPUs they get, whether the primary detaches, and the event settings Node.js decides
 * for itself (accepted, with what they mean here in docs/configuration.md).
 */
import { lookupGroup, lookupUser, mayChangeUser } from '../../core/accounts.js';
import { TAKE12, type DirectiveSpec } from './table.js';

export const processDirectives: readonly DirectiveSpec[] = [
  {
    name: 'user', contexts: ['main'], args: TAKE12,
    handle(d, scope, cx) {
      if (!mayChangeUser()) {
        cx.warn('the "user" directive makes sense only if the master process runs with super-user privileges, ignored', d,
          'Sluice runs as the user that started it; start it as root to bind ports below 1024 and run the workers as this user');
        return;
      }
      const name = d.args[0]!;
      const account = lookupUser(name);
      if (account === null) {
        cx.problem(`getpwnam("${name}") failed`, d, `there is no user "${name}" on this system; create it or name another (e.g. "user www-data;")`);
        return;
      }
      // nginx: without GROUP, the group with the user's name.
      const group = d.args[1] ?? name;
      const gid = lookupGroup(group);
      if (gid === null) {
        cx.problem(`getgrnam("${group}") failed`, d, `there is no group "${group}"; name one that exists as the second argument (e.g. "user ${name} nogroup;")`);
        return;
      }
      scope.main.user = { user: name, group, uid: account.uid, gid };
    },
  },
];
