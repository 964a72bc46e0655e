/**
 * Process-level directives of ngx_core_module and ngx_events_module: who the workers run as, the
 * limits and CPUs they get, whether the primary detaches, and the event settings Node.js decides
 * for itself (accepted, with what they mean here in docs/configuration.md).
 */
import { cpus } from 'node:os';
import { lookupGroup, lookupUser, mayChangeUser } from '../../core/accounts.js';
import type { Scope } from '../draft.js';
import { parseNumber } from '../units.js';
import { ONE_OR_MORE, TAKE1, TAKE12, parseFlag, type DirectiveSpec } from './table.js';

/** glibc's CPU_SETSIZE: the longest mask nginx accepts. */
const CPU_SETSIZE = 1024;

function processOf(scope: Scope): NonNullable<Scope['main']['process']> {
  return (scope.main.process ??= {});
}

/** The event methods nginx builds on this platform (libuv uses the first; poll and select are there too). */
function eventMethods(): readonly string[] {
  switch (process.platform) {
    case 'linux': return ['epoll', 'poll', 'select'];
    case 'darwin': case 'freebsd': case 'openbsd': case 'netbsd': return ['kqueue', 'poll', 'select'];
    case 'sunos': return ['eventport', '/dev/poll', 'poll', 'select'];
    default: return ['poll', 'select'];
  }
}

/** A directive accepted for compatibility whose value is only checked (Node.js decides what it sets). */
function acceptedFlag(name: string, contexts: DirectiveSpec['contexts']): DirectiveSpec {
  return { name, contexts, args: TAKE1, handle: (d, _scope, cx) => void parseFlag(d, cx) };
}

/** One `worker_cpu_affinity` mask, read right to left as nginx does (spaces ignored). */
function cpuSet(mask: string): number[] | string {
  if (mask.length > CPU_SETSIZE) return `"worker_cpu_affinity" supports up to ${CPU_SETSIZE} CPUs only`;
  const cpus: number[] = [];
  let bit = 0;
  for (let i = mask.length - 1; i >= 0; i--) {
    const ch = mask[i]!;
    if (ch === ' ') continue;
    if (ch === '1') cpus.push(bit);
    else if (ch !== '0') return `invalid character "${ch}" in "worker_cpu_affinity"`;
    bit++;
  }
  return cpus;
}

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
  {
    name: 'daemon', contexts: ['main'], args: TAKE1,
    handle(d, scope, cx) {
      const v = parseFlag(d, cx);
      if (v !== null) processOf(scope).daemon = v;
    },
  },
  {
    name: 'worker_rlimit_nofile', contexts: ['main'], args: TAKE1,
    handle(d, scope, cx) {
      // ngx_conf_set_num_slot's word.
      const n = parseNumber(d.args[0]!);
      if (n === null) cx.problem(`"${d.name}" directive invalid number`, d, `"${d.args[0]!}" is not a whole number`);
      else processOf(scope).rlimitNofile = n;
    },
  },
  {
    name: 'worker_cpu_affinity', contexts: ['main'], args: ONE_OR_MORE,
    handle(d, scope, cx) {
      const auto = d.args[0] === 'auto';
      if (auto && d.args.length > 2) {
        cx.problem('invalid number of arguments in "worker_cpu_affinity" directive', d, '"auto" takes at most one mask: "worker_cpu_affinity auto 1010;"');
        return;
      }
      const masks = auto ? d.args.slice(1) : d.args;
      const sets: number[][] = [];
      for (const m of masks) {
        const set = cpuSet(m);
        if (typeof set === 'string') {
          cx.problem(set, d, 'a mask is 0s and 1s, the rightmost for CPU 0 ("0001 0010" binds two workers to CPUs 0 and 1)');
          return;
        }
        sets.push(set);
      }
      // auto without a mask: every online CPU (nginx's ngx_ncpu).
      if (auto && sets.length === 0) sets.push([...Array(cpus().length).keys()]);
      processOf(scope).cpuAffinity = { auto, sets };
    },
  },
  {
    name: 'env', contexts: ['main'], args: TAKE1, repeatable: true,
    handle(d, scope) {
      const text = d.args[0]!;
      const eq = text.indexOf('=');
      const p = processOf(scope);
      p.env = [...(p.env ?? []), eq === -1 ? { name: text, value: null } : { name: text.slice(0, eq), value: text.slice(eq + 1) }];
    },
  },
  // Node.js compiles JavaScript regular expressions to native code on its own.
  acceptedFlag('pcre_jit', ['main']),
  {
    name: 'use', contexts: ['events'], args: TAKE1,
    handle(d, _scope, cx) {
      if (!eventMethods().includes(d.args[0]!)) {
        cx.problem(`invalid event type "${d.args[0]!}"`, d, `on this system: ${eventMethods().join(', ')} (Node.js's libuv uses ${eventMethods()[0]!} whatever is written)`);
      }
    },
  },
  acceptedFlag('multi_accept', ['events']),
  {
    // nginx: "worker processes will accept new connections by turn"; Sluice's turn is the
    // primary's round robin (server/reuseport.ts, workersAcceptShared).
    name: 'accept_mutex', contexts: ['events'], args: TAKE1,
    handle(d, scope, cx) {
      const on = parseFlag(d, cx);
      if (on !== null) scope.main.events!.acceptMutex = on;
    },
  },
  {
    name: 'accept_mutex_delay', contexts: ['events'], args: TAKE1,
    handle: (d, _scope, cx) => void cx.duration(d, d.args[0]!),
  },
];
