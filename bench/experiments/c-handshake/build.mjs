#!/usr/bin/env node
// Builds the C handshake experiment's addon (c_handshake.c, which compiles native/sluice_tunnel.c
// in) with node-gyp, as scripts/build-native.mjs builds native/. Linux only; not part of the
// package, of `npm ci` or of `npm test`: the benchmark's `sluice-c-handshake` targets need it.
// Exits 1 when it cannot be built.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypRebuild } from '../../../scripts/node-gyp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const say = (line) => process.stderr.write(`c-handshake: ${line}\n`);

if (process.platform !== 'linux') {
  say(`Linux only (epoll), not ${process.platform}`);
  process.exit(1);
}
const args = nodeGypRebuild(here);
if (args === null) {
  say('node-gyp was not found (it comes with npm)');
  process.exit(1);
}
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  say('the addon did not build (see above)');
  process.exit(1);
}
say(`built: ${join(here, 'build/Release/c_handshake.node')}`);
