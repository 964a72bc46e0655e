/**
 * nginx's temporary body files (ngx_create_temp_file): a ten-digit name under a `*_temp_path`,
 * hashed into sub-directories by its levels (levels `1 2` put 0000000123 in `3/12/`), the
 * directories made as needed with mode 0700, the file opened exclusively with mode 0600 (a name
 * taken already moves on to the next). A file that is not kept is unlinked as soon as it is
 * open, as nginx does: it goes away with its descriptor, whatever becomes of the process.
 */
import { mkdir, open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { TempPath } from '../../config/types.js';

export interface TempFile {
  readonly handle: FileHandle;
  /** The file's path (`$request_body_file`), even once unlinked. */
  readonly name: string;
  /** Whether the name is still on disk (a kept file): removed by {@link removeTempFile} unless persistent. */
  readonly linked: boolean;
}

/** nginx numbers its temp files from a counter; a process-wide one, started at random so workers rarely collide. */
let counter = Math.floor(Math.random() * 1_000_000_000);

/** The file name for `n` under `tp`, with its hashed sub-directories (ngx_create_hashed_filename). */
export function hashedName(tp: TempPath, n: number): { readonly dir: string; readonly file: string } {
  const name = String(n % 10_000_000_000).padStart(10, '0');
  let end = name.length;
  const parts: string[] = [tp.path];
  for (const level of tp.levels) {
    parts.push(name.slice(end - level, end));
    end -= level;
  }
  const dir = join(...parts);
  return { dir, file: join(dir, name) };
}

/**
 * Opens a new temp file under `tp`. `keep`: the name stays on disk until removeTempFile (a body
 * under client_body_in_file_only); otherwise it is unlinked at once.
 */
export async function createTempFile(tp: TempPath, keep: boolean): Promise<TempFile> {
  let made = false;
  let { dir, file } = hashedName(tp, ++counter);
  for (let tries = 0; ; tries++) {
    let handle: FileHandle;
    try {
      handle = await open(file, 'wx+', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && tries < 100) {
        ({ dir, file } = hashedName(tp, ++counter));
        made = false;
        continue;
      }
      // The same name again once its directories exist (nginx's ngx_create_full_path).
      if (code === 'ENOENT' && !made) {
        made = true;
        await mkdir(dir, { recursive: true, mode: 0o700 });
        continue;
      }
      throw err;
    }
    if (!keep) await unlink(file).catch(() => undefined);
    return { handle, name: file, linked: keep };
  }
}

/** Closes the file, and removes its name when it is still on disk and not to be kept. */
export function removeTempFile(tf: TempFile, keepName: boolean): void {
  void tf.handle.close().catch(() => undefined);
  if (tf.linked && !keepName) void unlink(tf.name).catch(() => undefined);
}
