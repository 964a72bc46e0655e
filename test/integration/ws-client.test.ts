/**
 * `sluice client URL` (issue 18), the wscat of the articles, as a real child process through the
 * proxy: `-x` for scripts, line mode on piped input (text messages, /ping, /close, "//"), binary
 * messages as hex, close codes and reasons shown, request headers (-H, --origin, --subprotocol),
 * wss:// with --ca and --insecure, a refused handshake. The pseudo-terminal run is in
 * test/e2e/ws-client-pty.test.ts (it needs `script`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { CHILD_MS, MAIN, runCli } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { AfterHook } from '../helpers/temp.js';
import { once, waitFor } from '../helpers/wait.js';

/** `sluice client ARGS` with `input` on its standard input (kept open when null) until it exits. */
async function runClient(args: readonly string[], input: string | null, until?: (stdout: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  if (input !== null) child.stdin.end(input);
  try {
    const closed = once(child, 'close', CHILD_MS);
    if (until) await waitFor(() => until(stdout), { timeoutMs: CHILD_MS, what: `the client's output: ${stdout}` });
    const [code] = await closed as [number | null];
    return { code, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function echoProxy(t: AfterHook): Promise<{ port: number; backend: Awaited<ReturnType<typeof startHttpBackend>> }> {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } location = /no { return 403; } }`), { t });
  return { port: proxy.port, backend };
}

test('client -x: sends the message, prints the answer alone and exits 0; -H, --origin and --subprotocol reach the upstream', async (t) => {
  const { port, backend } = await echoProxy(t);
  const res = await runCli(['client', '-x', 'hello through sluice', '-H', 'X-Trace: abc 1', '--origin', 'http://app.test', '--subprotocol', 'chat.v1', `ws://127.0.0.1:${port}/room?x=1`]);
  assert.deepEqual(res, { code: 0, signal: null, stdout: 'hello through sluice\n', stderr: '' });
  const seen = backend.requests.at(-1)!;
  assert.equal(seen.url, '/room?x=1');
  assert.equal(seen.headers['x-trace'], 'abc 1');
  assert.equal(seen.headers['origin'], 'http://app.test');
  assert.equal(seen.headers['sec-websocket-protocol'], 'chat.v1');
  assert.equal(seen.headers['sec-websocket-version'], '13');
});

test('client line mode on piped input: lines are text messages, /ping, //, /close with code and reason', async (t) => {
  const { port } = await echoProxy(t);
  const res = await runClient([`127.0.0.1:${port}/`], 'one\n/ping abc\n//starts with a slash\n/nope\n/close 4000 see you\n');
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.split('\n');
  assert.equal(lines[0], 'Connected (press CTRL+C to quit)');
  for (const line of ['> one', '< one', '< pong abc', '< /starts with a slash', 'Disconnected (code: 4000, reason: "see you")']) {
    assert.ok(lines.includes(line), `"${line}" in:\n${res.stdout}`);
  }
  assert.match(res.stdout, /^! unknown command "\/nope"/m);
  // The end of the input closes normally.
  const quiet = await runClient([`ws://127.0.0.1:${port}/`], 'bye\n');
  assert.equal(quiet.code, 0);
  assert.match(quiet.stdout, /^< bye\nDisconnected \(code: 1000, reason: ""\)\n$/m);
});

test('client: binary messages as hex, and the server\'s close code and reason', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.after(() => wss.close());
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.send(Buffer.from([0x00, 0x01, 0xfe, 0xff]));
    ws.send('then text');
    ws.close(4002, 'custom reason');
  });
  const address = wss.address() as { port: number };
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { proxy_pass http://127.0.0.1:${address.port}; } }`), { t });
  // Input stays open: the server ends it.
  const res = await runClient([`ws://127.0.0.1:${proxy.port}/`], null);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, 'Connected (press CTRL+C to quit)\n< <binary 4 bytes> 00 01 fe ff\n< then text\nDisconnected (code: 4002, reason: "custom reason")\n');
  const x = await runCli(['client', '-x', 'ignored', `ws://127.0.0.1:${proxy.port}/`]);
  assert.equal(x.stdout, '00 01 fe ff\n');
  assert.equal(x.code, 0);
});

test('client: wss:// with --ca, refused without it, accepted with --insecure; a refused handshake exits 1', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend(undefined, { id: 'tls-echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server {
    listen 127.0.0.1:0 ssl;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; }
    location = /no { return 403; }
  }`), { t });
  const url = `wss://localhost:${proxy.port}/`;
  const trusted = await runCli(['client', '--ca', certs.ca.certFile, '-x', 'over tls', url]);
  assert.deepEqual([trusted.code, trusted.stdout, trusted.stderr], [0, 'over tls\n', '']);
  const untrusted = await runCli(['client', '-x', 'over tls', url]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /^error: .*certificate/m);
  const insecure = await runCli(['client', '--insecure', '-x', 'anyway', url]);
  assert.deepEqual([insecure.code, insecure.stdout], [0, 'anyway\n']);
  const refused = await runCli(['client', '--ca', certs.ca.certFile, '-x', 'x', `wss://localhost:${proxy.port}/no`]);
  assert.deepEqual([refused.code, refused.stdout, refused.stderr], [1, '', 'error: Unexpected server response: 403\n']);
});

test('client: usage problems print the usage and exit 1; -h prints it and exits 0', async () => {
  const none = await runCli(['client']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^sluice client: a URL is needed\nusage: sluice client/);
  const bad = await runCli(['client', '-H', 'no colon', 'ws://127.0.0.1:1/']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /a header is "Name: value"/);
  const scheme = await runCli(['client', 'ftp://example.test/']);
  assert.match(scheme.stderr, /not a WebSocket URL/);
  const help = await runCli(['client', '-h']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: sluice client \[options\] URL\n/);
});
