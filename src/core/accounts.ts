/**
 * User and group names to ids, as getpwnam(3) and getgrnam(3) give them to nginx's `user`
 * directive. Node.js has no such call, so `getent` answers (it asks NSS, as libc would: LDAP and
 * the like included); where it is missing, /etc/passwd and /etc/group are read.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Account {
  readonly uid: number;
  readonly gid: number;
}

/** One `getent DATABASE NAME` line split on ":", or undefined when the name is unknown; null when getent cannot run. */
function getent(database: 'passwd' | 'group', name: string): string[] | undefined | null {
  try {
    return execFileSync('getent', [database, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim().split('\n')[0]!.split(':');
  } catch (error) {
    // getent exits 2 for a key it does not know.
    return (error as { status?: number }).status === 2 ? undefined : null;
  }
}

function fromFile(file: string, name: string): string[] | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  } catch {
    return undefined;
  }
}

function entry(database: 'passwd' | 'group', name: string): string[] | undefined {
  if (/^[0-9]+$/.test(name)) return undefined;
  const viaGetent = getent(database, name);
  return viaGetent === null ? fromFile(`/etc/${database}`, name) : viaGetent;
}

/** A user's uid and primary gid, or null when there is no such user. */
export function lookupUser(name: string): Account | null {
  const f = entry('passwd', name);
  if (f === undefined || f.length < 4) return null;
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** A group's gid, or null when there is no such group. */
export function lookupGroup(name: string): number | null {
  const f = entry('group', name);
  return f === undefined || f.length < 3 ? null : Number(f[2]);
}

let dropped = false;

/** Called by a worker process once it runs as `user`: its reloads read `user` as the primary does. */
export function markPrivilegesDropped(): void {
  dropped = true;
}

/** Whether `user` applies here: the process runs as root (nginx: geteuid() == 0), or is a worker that gave root up for it. */
export function mayChangeUser(): boolean {
  return dropped || (typeof process.geteuid === 'function' && process.geteuid() === 0);
}
