// How this machine's node-gyp is run to build an addon in a directory: shared by the package's
// install script (scripts/build-native.mjs) and the C handshake experiment's build
// (bench/experiments/c-handshake/build.mjs). Plain JavaScript: it runs before the TypeScript build.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * node-gyp's command line (run with process.execPath) that rebuilds the addon in `directory`, or
 * null when node-gyp is not found. npm tells its scripts where its own node-gyp is; outside npm,
 * it is looked for next to this node. The addon is built against this node's own headers when they
 * are installed (no download); npm passes its configured nodedir to its scripts.
 */
export function nodeGypRebuild(directory) {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ].filter((p) => p && existsSync(p));
  if (candidates.length === 0) return null;
  const prefix = join(dirname(process.execPath), '..');
  const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : '');
  const args = [candidates[0], 'rebuild', '--directory', directory, '--loglevel', 'warn'];
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  return args;
}
