/**
 * Opening and testing files as nginx's ngx_open_cached_file does for the static modules, with
 * `disable_symlinks`: nginx opens each path component with openat(O_NOFOLLOW) (`on`) or compares
 * the owners of a link and its target (`if_not_owner`); Node has no openat, so each component is
 * checked with lstat (and stat) before the file is opened. The difference: nginx's check cannot
 * race with a rename of a component between the check and the open, this one can (documented).
 */
import { close, constants, fstat, open, type Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { FileSettings } from '../config/types.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Evaluate } from './map-path.js';

/** How a path is checked for symbolic links: which mode, and how much of it is not checked. */
export interface SymlinkPolicy {
  readonly mode: 'off' | 'on' | 'if_not_owner';
  /** Length of the leading part of the path that is not checked (`from=`); 0 checks from "/". */
  readonly from: number;
}

export const NO_SYMLINK_CHECK: SymlinkPolicy = Object.freeze({ mode: 'off', from: 0 });

/** ngx_http_set_disable_symlinks: the policy for one file name. */
export function symlinkPolicy(files: FileSettings, path: string, ctx: RequestContext, evaluate: Evaluate): SymlinkPolicy {
  const mode = files.disableSymlinks;
  if (mode === 'off') return NO_SYMLINK_CHECK;
  if (files.symlinksFrom === null) return { mode, from: 0 };
  const from = evaluate(files.symlinksFrom, ctx);
  if (from.length === 0 || from.length > path.length || !path.startsWith(from)) return { mode, from: 0 };
  if (from.length === path.length) return NO_SYMLINK_CHECK;
  if (path[from.length] === '/') return { mode, from: from.length };
  if (path[from.length - 1] === '/') return { mode, from: from.length - 1 };
  return { mode, from: 0 };
}

/** A failed open or test: the error, and the call nginx names in its log line. */
export interface FileFailure {
  readonly ok: false;
  readonly err: NodeJS.ErrnoException;
  /** `open()`, `openat()` or `stat()`, as in nginx's `%s "%s" failed`. */
  readonly failed: string;
}

function failure(err: unknown, failed: string): FileFailure {
  return { ok: false, err: err as NodeJS.ErrnoException, failed };
}

function loop(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ELOOP: too many symbolic links encountered, open '${path}'`), { code: 'ELOOP' });
}

/** Each component of `path` after the unchecked part: no link (`on`), or a link whose target has its owner (`if_not_owner`). */
async function checkComponents(path: string, policy: SymlinkPolicy): Promise<FileFailure | null> {
  let at = policy.from;
  while (at < path.length) {
    const slash = path.indexOf('/', at + 1);
    const end = slash === -1 ? path.length : slash;
    const current = path.slice(0, end);
    at = end;
    if (current.endsWith('/') || end === 0) continue;
    let link: Stats;
    try {
      link = await lstat(current);
    } catch (err) {
      return failure(err, 'openat()');
    }
    if (!link.isSymbolicLink()) continue;
    if (policy.mode === 'on') return failure(loop(current), 'openat()');
    try {
      const target = await stat(current);
      if (target.uid !== link.uid) return failure(loop(current), 'openat()');
    } catch (err) {
      return failure(err, 'openat()');
    }
  }
  return null;
}

// The callback API on plain descriptors: about twice the opens per second of FileHandle's.
const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

/** Closes a descriptor this module opened; a failure to close is of no consequence to the request. */
export function closeFile(fd: number): Promise<void> {
  return closeFd(fd).catch(() => undefined);
}

export type Opened = { readonly ok: true; readonly stat: Stats; readonly fd: number | null } | FileFailure;

/**
 * Opens a file to serve it (the static handler): a directory is reported with `fd` null (nginx
 * opens it too, then closes it); the caller closes `fd` (closeFile).
 */
export async function openFile(path: string, policy: SymlinkPolicy): Promise<Opened> {
  if (policy.mode !== 'off') {
    const bad = await checkComponents(path, policy);
    if (bad !== null) return bad;
  }
  let fd: number;
  try {
    // Non-blocking, as nginx: opening a FIFO must not hang.
    fd = await openFd(path, constants.O_RDONLY | constants.O_NONBLOCK | (policy.mode === 'on' ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    return failure(err, policy.mode === 'off' ? 'open()' : 'openat()');
  }
  try {
    const s = await fstatFd(fd);
    if (s.isDirectory()) {
      await closeFile(fd);
      return { ok: true, stat: s, fd: null };
    }
    return { ok: true, stat: s, fd };
  } catch (err) {
    await closeFile(fd);
    return failure(err, 'fstat()');
  }
}

/** Tests a name without opening it (`index`, `try_files`: nginx's test_only). */
export async function testFile(path: string, policy: SymlinkPolicy): Promise<{ readonly ok: true; readonly stat: Stats } | FileFailure> {
  if (policy.mode !== 'off') {
    const bad = await checkComponents(path, policy);
    if (bad !== null) return bad;
  }
  try {
    return { ok: true, stat: await stat(path) };
  } catch (err) {
    return failure(err, 'stat()');
  }
}
