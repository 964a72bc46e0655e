import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Anything with `after(fn)`, such as node:test's `TestContext` or `SuiteContext`. */
export interface AfterHook {
  after(fn: () => unknown): void;
}

/** A scratch directory, see {@link tempDir}. */
export interface TempDir {
  /** Absolute path of the directory. */
  readonly path: string;
  /** The absolute path of `parts` inside the directory (nothing is created). */
  join(...parts: string[]): string;
  /** Writes `contents` to `name` (creating parent folders) and returns its absolute path. */
  write(name: string, contents: string | Buffer): string;
  /** Removes the directory and everything in it. Idempotent; never throws. */
  cleanup(): void;
}

/**
 * Makes a fresh directory under `os.tmpdir()` (named `sluice-test-XXXXXX`). With `t`, it is removed
 * by `t.after`; otherwise call `cleanup()` (in a `finally`).
 *
 * @example const dir = tempDir(t); const conf = dir.write('sluice.conf', 'events {}');
 */
export function tempDir(t?: AfterHook, prefix = 'sluice-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  let removed = false;
  const dir: TempDir = {
    path,
    join: (...parts) => join(path, ...parts),
    write(name, contents) {
      const file = join(path, name);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, contents);
      return file;
    },
    cleanup() {
      if (removed) return;
      removed = true;
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  t?.after(() => dir.cleanup());
  return dir;
}
