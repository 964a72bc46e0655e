/** `sluice -T` without -c dumps the embedded config under the name the test lines give it (issue 18). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/cli/default-config.js';
import { okLines, runCli } from '../helpers/cli-process.js';

test('-T without -c: the dump\'s header names the embedded default, as the two lines above it do', async () => {
  const res = await runCli(['-T']);
  assert.equal(res.stderr, okLines('<embedded default>'));
  assert.equal(res.stdout, `# configuration file <embedded default>:\n${DEFAULT_CONFIG}\n`);
  assert.equal(res.code, 0);
});
