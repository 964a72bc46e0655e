#!/usr/bin/env node
// Builds the optional native tunnel addon (native/sluice_tunnel.c) with node-gyp, as the package's
// install script. It is optional: when it cannot be built (no compiler, not Linux) this says so
// and exits 0, and Sluice moves tunnel bytes in TypeScript instead. Plain JavaScript, because it
// runs before the TypeScript build.
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

const args = nodeGypRebuild(join(root, 'native'));
if (args === null) {
  say('node-gyp was not found (it comes with npm); the native tunnel addon is not built; tunnels run in TypeScript');
  process.exit(0);
}
const r = spawnSync(process.execPath, args, {
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (r.status !== 0) {
  say('the native tunnel addon did not build (see above); tunnels run in TypeScript. Fix the build and run `npm run build:native`.');
  process.exit(0);
}
say('native tunnel addon built: native/build/Release/sluice_tunnel.node');
