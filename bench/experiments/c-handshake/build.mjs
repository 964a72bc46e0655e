#!/usr/bin/env node
// Builds the C handshake experiment's addon (c_handshake.c, which compiles native/sluice_tunnel.c
// in) with node-gyp, as scripts/build-native.mjs builds native/. Linux only; not part of the
// package, of `npm ci` or of `npm test`: the benchmark's `sluice-c-handshake` targets need it.
// Exits 1 when it cannot be built.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const say = (line) => process.stderr.write(`c-handshake: ${line}\n`);

if (process.platform !== 'linux') {
  say(`Linux only (epoll), not ${process.platform}`);
  process.exit(1);
}
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) {
  say('node-gyp was not found (it comes with npm)');
  process.exit(1);
}
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : '');
const args = [candidates[0], 'rebuild', '--directory', here, '--loglevel', 'warn'];
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  say('the addon did not build (see above)');
  process.exit(1);
}
say(`built: ${join(here, 'build/Release/c_handshake.node')}`);
