/**
 * The `pid` file. It is written once the listeners accept connections (nginx binds first, then
 * writes it): init systems and scripts take its appearance to mean "up". It is written to a
 * temporary name and renamed, so that whoever sees it also sees the whole pid.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/** nginx's words for the errors of open(2): `2: No such file or directory`. */
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? '2: No such file or directory' : code === 'EACCES' ? '13: Permission denied' : (code ?? (e as Error).message);
}

/**
 * Writes this process's pid to `path`. Returns null, or the line nginx logs when it cannot:
 * `open() "/run/sluice.pid" failed (2: No such file or directory)`.
 */
export function writePidFile(path: string): string | null {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${process.pid}\n`);
    renameSync(temporary, path);
    return null;
  } catch (e) {
    rmSync(temporary, { force: true });
    return `open() "${path}" failed (${errnoText(e)})`;
  }
}
