// worker_rlimit_nofile and worker_cpu_affinity, which Sluice applies with util-linux's prlimit and
// taskset (Node.js has neither setrlimit() nor sched_setaffinity()): what the kernel then says
// about each worker process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { test } from 'node:test';
import { CliProcess, httpGet } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

/** "Max open files" soft and hard limits of a process. */
function openFileLimits(pid: number): [string, string] {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [, soft, hard] = /Max open files\s+(\S+)\s+(\S+)/.exec(line)!;
  return [soft!, hard!];
}

function cpusAllowed(pid: number): string {
  return readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'))!.split(/\s+/)[1]!;
}

/** The worker pids, by asking until every one of `count` has answered (the workers race for connections). */
async function workerPids(port: number, count: number): Promise<number[]> {
  const seen = new Set<number>();
  await waitFor(async () => {
    seen.add(Number((await httpGet(port, '/')).body));
    return seen.size >= count ? true : null;
  }, { what: `${count} worker processes to answer` });
  return [...seen].sort((a, b) => a - b);
}

const pidServer = 'server { listen 127.0.0.1:0; location / { return 200 "$pid"; } }';

test('worker_rlimit_nofile sets the soft and hard open-file limits of each worker (and of a single process)', async (t) => {
  const dir = tempDir(t);
  for (const workers of [1, 2]) {
    const file = dir.write(`w${workers}.conf`, conf(pidServer, `worker_processes ${workers};\nworker_rlimit_nofile 2345;`));
    const child = new CliProcess(t, ['-c', file], dir.path);
    const pids = await workerPids(await child.port(), workers);
    for (const pid of pids) assert.deepEqual(openFileLimits(pid), ['2345', '2345'], `worker_processes ${workers}`);
    await child.stop('SIGTERM');
  }
});

test('worker_cpu_affinity: one mask per worker, or auto; Cpus_allowed_list shows it', async (t) => {
  const n = cpus().length;
  const dir = tempDir(t);
  // With one CPU there is only one mask to give.
  const masks = n >= 2 ? '01 10' : '1';
  const expected = n >= 2 ? ['0', '1'] : ['0'];
  for (const [name, line] of [['masks', `worker_cpu_affinity ${masks};`], ['auto', 'worker_cpu_affinity auto;']] as const) {
    const file = dir.write(`${name}.conf`, conf(pidServer, `worker_processes ${expected.length};\n${line}`));
    const child = new CliProcess(t, ['-c', file], dir.path);
    const pids = await workerPids(await child.port(), expected.length);
    assert.deepEqual(pids.map(cpusAllowed).sort(), expected, name);
    await child.stop('SIGTERM');
  }
});

