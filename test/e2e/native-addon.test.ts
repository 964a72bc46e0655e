/**
 * `npm ci` built the native tunnel addon (scripts/build-native.mjs: node-gyp, a C compiler, make
 * and python3) and it loads. The install treats the addon as optional, and the default suite runs
 * without it (tunnels in TypeScript) on a machine with only Node and npm; this end-to-end test
 * (`npm run test:e2e`) is what fails when CI lost it, so that the native suites cannot quietly
 * run over TypeScript there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddonProblem, tunnelAddon } from '../../src/core/native-addon.js';

test('npm ci built the native tunnel addon and it loads', () => {
  assert.notEqual(process.env['SLUICE_NATIVE'], 'off', 'SLUICE_NATIVE=off is set: the addon is not even tried');
  assert.notEqual(tunnelAddon(), null,
    `the native tunnel addon is not available: ${nativeAddonProblem()}. npm ci builds it (scripts/build-native.mjs; it needs a C compiler, make and python3); run "npm run build:native" to see why it did not.`);
  assert.equal(nativeAddonProblem(), '');
});
