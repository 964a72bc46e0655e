/**
 * The package as a new user gets it: `npm pack` of this checkout, installed into a scratch project
 * from the tarball (the npm registry only for TypeScript and @types/node). The README's library
 * example compiles with `tsc --strict` under a tsconfig without `"types": ["node"]` (TypeScript 6
 * and later load no @types package by default), and the installed `sluice` command runs.
 * End-to-end: it needs the npm registry.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';

/** The npm next to this Node (its bin directory), as `npm test` runs it. */
const NPM_CLI = join(process.execPath, '../../lib/node_modules/npm/bin/npm-cli.js');

function npm(args: readonly string[], cwd: string): string {
  const r = spawnSync(process.execPath, [process.env['npm_execpath'] ?? NPM_CLI, ...args], {
    cwd, encoding: 'utf8', timeout: 300_000, env: { ...process.env, SLUICE_SKIP_NATIVE: '1', npm_config_audit: 'false', npm_config_fund: 'false' },
  });
  assert.equal(r.status, 0, `npm ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The ```ts block of the README's "As a library" section. */
function readmeLibraryExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('As a library'));
  assert.ok(section !== undefined, 'README.md has an "## As a library" section');
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(m !== null, 'the "As a library" section has a ```ts example');
  return m[1]!;
}

test('npm pack + install from the tarball: the README library example compiles with tsc --strict, without "types": ["node"]; a global install has the command and the man page', async (t) => {
  const dir = tempDir(t);
  // --ignore-scripts: `npm run test:e2e` has just built dist/; `prepare` would build it again.
  npm(['pack', '--ignore-scripts', '--silent', '--pack-destination', dir.path], ROOT);
  const tarball = readdirSync(dir.path).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball !== undefined, 'npm pack made a tarball');
  const project = dir.join('project');
  dir.write('project/package.json', JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  // TypeScript 7 (the current line): its default "types" is [], which is what the reference in
  // index.d.ts is for. @types/node 20: package.json's engines.
  npm(['install', '--loglevel=error', join(dir.path, tarball), 'typescript@7', '@types/node@20'], project);
  const example = readmeLibraryExample();
  assert.match(example, /proxy\.stats\.snapshot\(\)/, 'the example reads the statistics');
  writeFileSync(join(project, 'index.ts'), example);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true },
    files: ['index.ts'],
  }));
  const tsc = spawnSync(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(tsc.status, 0, `tsc --strict on the README example:\n${tsc.stdout}\n${tsc.stderr}`);
  // The installed command (the package's bin) runs from node_modules/.bin.
  const version = spawnSync(join(project, 'node_modules/.bin/sluice'), ['-v'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(version.stderr, /^sluice version: sluice\/\d+\.\d+\.\d+/);
  // The man page travels in the tarball (npm links it into man1 for a global install).
  const listing = spawnSync('tar', ['tzf', join(dir.path, tarball)], { encoding: 'utf8' }).stdout.split('\n');
  assert.ok(listing.includes('package/man/sluice.1'), 'the tarball has man/sluice.1');
  assert.ok(listing.includes('package/contrib/systemd/sluice.service'), 'and contrib/');

  // A global install, as the README's: the command and `man sluice` under the prefix (npm links
  // the man page into share/man/man1).
  const prefix = dir.join('global');
  npm(['install', '--global', '--prefix', prefix, '--loglevel=error', join(dir.path, tarball)], project);
  const global = spawnSync(join(prefix, 'bin', 'sluice'), ['-v'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(global.stderr, /^sluice version: sluice\/\d+\.\d+\.\d+/);
  assert.equal(realpathSync(join(prefix, 'share/man/man1/sluice.1')), realpathSync(join(prefix, 'lib/node_modules/sluice/man/sluice.1')));
});
