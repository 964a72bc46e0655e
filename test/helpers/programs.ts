import assert from 'node:assert/strict';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Where Debian puts daemons (nginx, haproxy): not on every user's PATH. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The absolute path of `program` (on PATH, else in an sbin directory), for an end-to-end test
 * (test/e2e/) that drives it. A missing program fails the test with the Debian package to
 * install: end-to-end tests never skip, so a machine without the program cannot pass
 * `npm run test:e2e` unnoticed. Tests outside test/e2e/ must not need it (`npm test` runs on a
 * machine with only Node and npm).
 *
 * @example const nginx = requireProgram('nginx', 'nginx-light');
 */
export function requireProgram(program: string, debianPackage: string): string {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN];
  const found = dirs.map((d) => join(d, program)).find(executable);
  if (found === undefined) {
    assert.fail(`${program} is missing (looked on PATH and in ${SBIN.join(', ')}): this end-to-end test needs the Debian package `
      + `"${debianPackage}" (apt-get install -y ${debianPackage}; .ci/run installs it when run as root). It fails rather than skips.`);
  }
  return found;
}
