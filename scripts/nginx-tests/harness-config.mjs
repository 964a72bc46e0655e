// Writes the copy of a Test::Nginx config that sluice-as-nginx gives to Sluice:
//   node harness-config.mjs IN OUT TESTDIR CLI
//
// Only the suite's scaffolding is changed, and only while Sluice refuses it:
// - `daemon off;`, which every test config has (Sluice always runs in the foreground);
// - the lines Test::Nginx itself puts into every http block (test_globals_http in
//   lib/Test/Nginx.pm): `root TESTDIR;` `access_log TESTDIR/access.log;`
//   `client_body_temp_path TESTDIR/client_body_temp;` `proxy_temp_path TESTDIR/proxy_temp;` (and the
//   other *_temp_path lines for modules that are claimed). They are recognised by their exact text,
//   in that order, so a test's own `root` or `proxy_temp_path` lines are left alone.
// A directive is left in place as soon as Sluice's directive table knows it, so the copy shrinks
// by itself as Sluice implements more. Refused lines become comments: line numbers do not move.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [input, output, testdirArg, cli] = process.argv.slice(2);
if (!input || !output || testdirArg === undefined || !cli) {
  process.stderr.write('usage: node harness-config.mjs IN OUT TESTDIR CLI\n');
  process.exit(2);
}
const table = resolve(dirname(cli), '../config/directives/index.js');
const { DIRECTIVES_BY_NAME } = await import(pathToFileURL(table).href);
const refused = (name) => !DIRECTIVES_BY_NAME.has(name);

const testdir = testdirArg.replace(/\/+$/, '');
const TEMP_PATHS = ['client_body_temp', 'fastcgi_temp', 'proxy_temp', 'uwsgi_temp', 'scgi_temp'];
const lines = readFileSync(input, 'utf8').split('\n');
const comment = (i, name) => {
  lines[i] = lines[i].replace(/^(\s*)(.*)$/, `$1# $2 (sluice-as-nginx: test scaffolding; Sluice refuses "${name}")`);
};

for (let i = 0; i < lines.length; i++) {
  if (/^\s*daemon\s+off\s*;\s*$/.test(lines[i]) && refused('daemon')) comment(i, 'daemon');
  if (lines[i].trim() !== `root ${testdir};` || lines[i + 1] !== `access_log ${testdir}/access.log;`) continue;
  if (refused('root')) comment(i, 'root');
  if (refused('access_log')) comment(i + 1, 'access_log');
  for (let j = i + 2; j < lines.length; j++) {
    const name = TEMP_PATHS.find((t) => lines[j] === `${t}_path ${testdir}/${t};`);
    if (name === undefined) break;
    if (refused(`${name}_path`)) comment(j, `${name}_path`);
  }
}
writeFileSync(output, lines.join('\n'));
