/**
 * The `(2: No such file or directory)` part of nginx's error lines (ngx_log_error with an errno):
 * the system's number and text for a Node error code.
 */
import { constants as osConstants } from 'node:os';

/** strerror() texts for the codes file operations meet. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EMLINK: 'Too many links',
  EMFILE: 'Too many open files',
  ENFILE: 'Too many open files in system',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
};

/** The Node error code of a failed file operation (EIO when it has none). */
export function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? 'EIO';
}

/** `(2: No such file or directory)` for an error from a file operation. */
export function errnoSuffix(err: unknown): string {
  const code = errnoCode(err);
  const errno = (osConstants.errno as Record<string, number>)[code] ?? 0;
  return `(${errno}: ${ERRNO_TEXT[code] ?? code})`;
}
