/**
 * The native addon's I/O thread (native/sluice_tunnel.c, io_thread_setup): named `sluice-io`, and
 * scheduled SCHED_BATCH unless SLUICE_IO_SCHED=other, read from /proc/self/task (the thread's comm
 * and the policy field of its stat line).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { nativeTunnels } from '../../src/proxy/tunnel/native-tunnels.js';
import { threadPolicies } from '../helpers/threads.js';

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

test('the addon\'s I/O thread is named sluice-io and runs under SCHED_BATCH by default', () => {
  assert.notEqual(nativeTunnels(), null, 'the addon is built (npm ci builds it)');
  assert.deepEqual(threadPolicies('sluice-io'), [SCHED_BATCH]);
});

test('SLUICE_IO_SCHED=other leaves the I/O thread under SCHED_OTHER', async () => {
  // A child process: the addon reads the variable when it starts its thread, once per process.
  const child = `
    const { nativeTunnels } = await import(${JSON.stringify(new URL('../../src/proxy/tunnel/native-tunnels.js', import.meta.url).href)});
    const { threadPolicies } = await import(${JSON.stringify(new URL('../helpers/threads.js', import.meta.url).href)});
    if (nativeTunnels() === null) throw new Error('no addon');
    console.log(JSON.stringify(threadPolicies('sluice-io')));
    process.exit(0);
  `;
  const run = async (value: string | undefined): Promise<number[]> => {
    const env = { ...process.env };
    if (value === undefined) delete env['SLUICE_IO_SCHED'];
    else env['SLUICE_IO_SCHED'] = value;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child], { env });
    return JSON.parse(stdout) as number[];
  };
  assert.deepEqual(await run('other'), [SCHED_OTHER]);
  // The same child without the variable: the default, so the child reads the thread it started.
  assert.deepEqual(await run(undefined), [SCHED_BATCH]);
});
