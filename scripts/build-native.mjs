#!/usr/bin/env node
// Builds the optional native tunnel addon (native/sluice_tunnel.c) with node-gyp, as the package's
// install script, and then, apart so that its failure leaves the relay alone, the small C++ addon
// that gives V8's young generation back when the sluice process is idle (native/memory/,
// src/cli/memory-settings.ts; without it the young generation stays at 1 MiB). It is optional: when it cannot be built (no compiler, not Linux) this says so
// and exits 0, and Sluice moves tunnel bytes in TypeScript instead. Plain JavaScript, because it
// runs before the TypeScript build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stderr.write(`sluice: ${line}\n`);

if (process.platform !== 'linux') {
  say(`the native tunnel addon is Linux-only (epoll, splice); on ${process.platform} tunnels run in TypeScript`);
  process.exit(0);
}
if (process.env.SLUICE_SKIP_NATIVE === '1') {
  say('SLUICE_SKIP_NATIVE=1: the native tunnel addon is not built; tunnels run in TypeScript');
  process.exit(0);
}

// npm tells its scripts where its own node-gyp is; outside npm, look next to this node.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) {
  say('node-gyp was not found (it comes with npm); the native tunnel addon is not built; tunnels run in TypeScript');
  process.exit(0);
}
// Build against this node's own headers when they are installed (no download); npm passes its
// configured nodedir to its scripts.
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : '');
/** node-gyp rebuild in `dir`; whether it built. */
function gypRebuild(dir) {
  const args = [candidates[0], 'rebuild', '--directory', dir, '--loglevel', 'warn'];
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  return spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }).status === 0;
}
if (gypRebuild(join(root, 'native/memory'))) say('memory addon built: native/memory/build/Release/sluice_memory.node');
else say('the memory addon did not build (see above; it needs a C++ compiler); the sluice process keeps V8\'s young generation at 1 MiB');
if (!gypRebuild(join(root, 'native'))) {
  say('the native tunnel addon did not build (see above); tunnels run in TypeScript. Fix the build and run `npm run build:native`.');
  process.exit(0);
}
say('native tunnel addon built: native/build/Release/sluice_tunnel.node');
