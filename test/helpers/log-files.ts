import { existsSync, readFileSync } from 'node:fs';
import { waitFor, type WaitForOptions } from './wait.js';

/** The non-empty lines of a log file the proxy writes; none while the file does not exist yet. */
export function fileLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/**
 * Waits until `file` holds a whole line (ended by its newline) that includes `needle`, then
 * returns every line of the file. The failure names what the file held so far.
 *
 * @example const [line] = await waitForFileLine(accessLog, '/ws');
 */
export async function waitForFileLine(file: string, needle: string, options: Pick<WaitForOptions, 'timeoutMs'> = {}): Promise<string[]> {
  return waitFor(() => {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    return text.endsWith('\n') && fileLines(file).some((l) => l.includes(needle)) ? fileLines(file) : null;
  }, { ...options, what: `a line with ${JSON.stringify(needle)} in ${file} (so far: ${JSON.stringify(fileLines(file))})` });
}
