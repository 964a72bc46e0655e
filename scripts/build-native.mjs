#!/usr/bin/env node
// Builds the optional native tunnel addon (native/sluice_tunnel.c) with node-gyp, as the package's
// install script, and then, apart so that its failure leaves the relay alone, the small C++ addon
// that gives V8's young generation back when the sluice process is idle (native/memory/,
// src/cli/memory-settings.ts; without it the young generation stays at 1 MiB). It is optional:
// when it cannot be built (no compiler, not Linux) this says so and exits 0, and Sluice moves
// tunnel bytes in TypeScript instead. Plain JavaScript, because it runs before the TypeScript build.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypRebuild } from './node-gyp.mjs';

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

/** node-gyp rebuild in `dir`; whether it built (null: node-gyp was not found). */
function gypRebuild(dir) {
  const args = nodeGypRebuild(dir);
  if (args === null) return null;
  return spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }).status === 0;
}
const memory = gypRebuild(join(root, 'native/memory'));
if (memory === null) {
  say('node-gyp was not found (it comes with npm); the native tunnel addon is not built; tunnels run in TypeScript');
  process.exit(0);
}
if (memory) say('memory addon built: native/memory/build/Release/sluice_memory.node');
else say('the memory addon did not build (see above; it needs a C++ compiler); the sluice process keeps V8\'s young generation at 1 MiB');
if (!gypRebuild(join(root, 'native'))) {
  say('the native tunnel addon did not build (see above); tunnels run in TypeScript. Fix the build and run `npm run build:native`.');
  process.exit(0);
}
say('native tunnel addon built: native/build/Release/sluice_tunnel.node');
