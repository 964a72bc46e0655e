// The `node --test` reporter that scripts/test.mjs adds next to the spec reporter. It does two
// things:
// - an overall progress line each time a test file starts, so that a long `npm test` says how far
//   it is: `sluice test: [main] 12/128 files started, 230 tests done, 0 failed, 45 s`. Files are
//   counted as they start (Node 20 reports a file's end as a test named by its path, newer Nodes
//   do not);
// - Node's own totals (its closing `tests 555`, `fail 0`, ... diagnostics), written as
//   `# tests 555` lines to the file SLUICE_TEST_TOTALS names, for the runner's summary. (One
//   reporter for both: a third reporter makes Node warn about its listeners.)
// The pass's name and file count come from SLUICE_TEST_PROGRESS ("main 128").
import { writeFileSync } from 'node:fs';

const [pass = '?', total = '?'] = (process.env.SLUICE_TEST_PROGRESS ?? '').split(' ');
const totalsFile = process.env.SLUICE_TEST_TOTALS;
const started = Date.now();

export default async function* progress(source) {
  const files = new Set();
  const totals = [];
  let done = 0;
  let failed = 0;
  for await (const event of source) {
    const data = event.data ?? {};
    // Node 20's per-file entry (name = the file's path) is not a test of its own.
    const fileEntry = data.file !== undefined && data.name === data.file;
    if ((event.type === 'test:pass' || event.type === 'test:fail') && !fileEntry) {
      done++;
      if (event.type === 'test:fail') failed++;
    } else if (event.type === 'test:diagnostic' && data.nesting === 0 && /^(tests|pass|fail|cancelled|skipped|todo) \d+$/.test(data.message)) {
      totals.push(`# ${data.message}\n`);
    } else if (event.type === 'test:dequeue' && data.file !== undefined && !files.has(data.file)) {
      files.add(data.file);
      yield `sluice test: [${pass}] ${files.size}/${total} files started, ${done} tests done, ${failed} failed, ${Math.round((Date.now() - started) / 1000)} s\n`;
    }
  }
  if (totalsFile) writeFileSync(totalsFile, totals.join(''));
}
