/**
 * `sluice client` in a terminal, as a user types into it: run under a pseudo-terminal made by
 * util-linux's `script` (Debian's bsdutils; a native pty module is not wanted), through the proxy
 * to the echo backend. The greeting arrives, typed lines come back with "< ", /ping gets its pong,
 * Ctrl-C closes the connection with 1000 and the command exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, MAIN } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { requireProgram } from '../helpers/programs.js';
import { startTestProxy } from '../helpers/proxy.js';
import { once, waitFor } from '../helpers/wait.js';

/** What the terminal shows, without the escape sequences readline uses to redraw its prompt. */
function screen(raw: string): string {
  return raw.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
}

test('client in a pseudo-terminal: prompt, typed lines echoed back, /ping, /close and Ctrl-C', async (t) => {
  const script = requireProgram('script', 'bsdutils');
  const backend = await startHttpBackend(undefined, { id: 'pty-echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } }`), { t });

  const run = (url: string): { output: () => string; write: (s: string) => void; exited: Promise<unknown[]> } => {
    // -q: no "Script started" lines; -e: the command's exit status; the log file is not wanted.
    const child = spawn(script, ['-q', '-e', '-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} client ${url}`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let raw = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => void (raw += d));
    return { output: () => screen(raw), write: (s) => void child.stdin.write(s), exited: once(child, 'exit', CHILD_MS) };
  };
  const seen = async (c: { output: () => string }, what: string): Promise<void> => {
    await waitFor(() => c.output().includes(what), { timeoutMs: CHILD_MS, what: `"${what}" on the terminal:\n${c.output()}` });
  };

  const c = run(`ws://127.0.0.1:${proxy.port}/whoami`);
  await seen(c, 'Connected (press CTRL+C to quit)');
  await seen(c, '< {"id":"pty-echo"}');
  c.write('hello from a terminal\r');
  await seen(c, '< hello from a terminal');
  // The typed line shows after the prompt, as typed.
  assert.match(c.output(), /^> hello from a terminal$/m);
  c.write('/ping tick\r');
  await seen(c, '< pong tick');
  c.write('/close 4001 done here\r');
  await seen(c, 'Disconnected (code: 4001, reason: "done here")');
  assert.deepEqual(await c.exited, [0, null]);

  const d = run(`ws://127.0.0.1:${proxy.port}/`);
  await seen(d, 'Connected');
  d.write('\x03');
  await seen(d, 'Disconnected (code: 1000, reason: "")');
  assert.deepEqual(await d.exited, [0, null]);
});
