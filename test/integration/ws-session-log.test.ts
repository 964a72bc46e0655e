// A WebSocket session in the access log and the metrics ($websocket_close_code,
// $websocket_messages_in/_out, $websocket_subprotocol; sluice_upstream_websocket_closes_total),
// each case against every way Sluice relays a tunnel (tunnel-impl-support.ts): the native relay,
// the TypeScript relay, the HTTP/2 tunnel.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { RequestContext } from '../../src/proxy/context/request-context.js';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { httpGet } from '../helpers/cli-process.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { maskedFrame, readToEnd, readUntil, serverFrame } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';
import { IMPLEMENTATIONS, adopted, closedCleanly, closedEvent, contractProxy, endBoth, openTunnel } from './tunnel-impl-support.js';
import { WAIT_MS, startScriptedUpstream, switching101, tunnelEvents, values } from './ws-support.js';

const closePayload = (code: number, reason: string): Buffer => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

/** The access-log lines once `n` are there. */
function logLines(file: string, n: number): Promise<string[]> {
  return waitFor(() => {
    if (!existsSync(file)) return null;
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    return lines.length >= n ? lines : null;
  }, { timeoutMs: WAIT_MS, what: `${n} access-log lines` });
}

for (const impl of IMPLEMENTATIONS) {
  const { name } = impl;

  test(`${name}: the access log has the first close frame and its side, the messages each way and the subprotocol; the metrics count closes by code`, async (t) => {
    const log = tempDir(t).join('access.log');
    // The upstream chooses the "chat" subprotocol.
    const upstream = await startScriptedUpstream(t, (x) => switching101({
      accept: acceptKey(values(x.head, 'sec-websocket-key')[0] ?? ''), extra: ['Sec-WebSocket-Protocol: chat'],
    }));
    const proxy = await contractProxy(t, impl, upstream.addr, {
      http: `log_format ws '$uri $websocket_close_code $websocket_messages_in $websocket_messages_out "$websocket_subprotocol"';\n  access_log ${log} ws;`,
      // Another address: servers on 127.0.0.1:0 would share the tunnel's listener.
      after: 'server { listen 127.0.0.2:0; access_log off; location = /metrics { sluice_metrics; } }',
    });
    const metrics = proxy.listeners[1]!;
    const events = tunnelEvents(t, proxy.port);

    // One session the client closes (4000), with three messages up (one in two fragments, a ping
    // between them) and two down.
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/first');
    const { client, up } = tunnel;
    const upward = Buffer.concat([
      maskedFrame(Opcode.TEXT, 'one'),
      maskedFrame(Opcode.BINARY, 'tw', { fin: false }), maskedFrame(Opcode.PING, 'p'), maskedFrame(Opcode.CONTINUATION, 'o'),
      maskedFrame(Opcode.TEXT, 'three'),
    ]);
    client.io.write(upward);
    await up.readUntil((b) => b.length >= upward.length, WAIT_MS);
    const downward = Buffer.concat([serverFrame(Opcode.TEXT, 'a'), serverFrame(Opcode.PONG, 'p'), serverFrame(Opcode.BINARY, 'b')]);
    up.socket.write(downward);
    await readUntil(client.io, (b) => b.length >= downward.length, WAIT_MS);
    const clientClose = maskedFrame(Opcode.CLOSE, closePayload(4000, 'bye'));
    client.io.write(clientClose);
    await up.readUntil((b) => b.length >= clientClose.length, WAIT_MS);
    // The upstream answers with a close of its own (1000): the client's came first.
    up.socket.end(serverFrame(Opcode.CLOSE, closePayload(1000, '')));
    await readToEnd(client.io, WAIT_MS);
    client.io.end();
    await closedCleanly(tunnel);
    await closedEvent(events, '/first');

    // One that ends with no close frame at all.
    const second = await openTunnel(t, impl, proxy, upstream, events, '/second');
    second.client.io.end();
    await second.up.readToEnd(WAIT_MS);
    second.up.socket.end();
    await closedCleanly(second);
    await closedEvent(events, '/second');

    assert.deepEqual(await logLines(log, 2), ['/first 4000/client 3 2 "chat"', '/second - 0 0 "chat"']);
    const figures = parsePrometheus((await httpGet(metrics.port, '/metrics', { address: '127.0.0.2' })).body);
    const upstreamName = upstream.addr;
    assert.equal(sampleValue(figures, 'sluice_upstream_websocket_closes_total', { upstream: upstreamName, code: '4000', side: 'client' }), 1);
    assert.equal(sampleValue(figures, 'sluice_upstream_websocket_closes_total', { upstream: upstreamName, code: '1006', side: 'none' }), 1);
  });

  for (const maps of [false, true]) {
    test(`${name}: every variable the access log reads when the tunnel ends has the value it had at the handshake${maps ? ' (the log names maps: the context is kept whole)' : ''}`, async (t) => {
      // An open tunnel keeps only what its end reads of its request (RequestContext.compactForTunnel):
      // the same variables, read into a header of the answer that opened it (add_header ... always,
      // evaluated at the handshake, logged as $sent_http_x_vars) and read again by the log line
      // when the tunnel ends, must agree. No subscriber to the end events here: they keep it whole.
      const log = tempDir(t).join('access.log');
      const upstream = await startScriptedUpstream(t, (x) => switching101({
        accept: acceptKey(values(x.head, 'sec-websocket-key')[0] ?? ''), extra: ['X-Up: from-upstream', 'Set-Cookie: uc=7; Path=/', 'Sec-WebSocket-Protocol: chat'],
      }));
      const vars = [
        '$request', '$request_method', '$request_uri', '$uri', '$args', '$is_args', '$arg_a', '$arg_b', '$host', '$http_host',
        '$http_x_probe', '$http_upgrade', '$cookie_session', '$tag', '$remote_addr', '$remote_port', '$server_addr', '$server_port',
        '$server_name', '$server_protocol', '$scheme', '$https', '$connection', '$connection_requests', '$request_id', '$proxy_host',
        '$proxy_add_x_forwarded_for', '$upstream_addr', '$upstream_status', '$upstream_http_x_up', '$upstream_cookie_uc', '$status',
        ...(maps ? ['$conn_upgrade', '$probe_kind'] : []),
      ].join('|');
      const proxy = await contractProxy(t, impl, upstream.addr, {
        http: `map $http_upgrade $conn_upgrade { default upgrade; '' close; }
  map $http_x_probe $probe_kind { default other; ~^p-(?<kind>[a-z]+)$ kind-$kind; }
  log_format vars '${vars}#$sent_http_x_vars';
  access_log ${log} vars;`,
        location: `set $tag "t-$arg_a"; proxy_set_header X-Kind $probe_kind; add_header X-Vars '${vars}' always;`,
      });
      // The open event comes after the context was compacted (and does not keep it whole).
      const opened: RequestContext[] = [];
      const onOpen = (m: unknown): void => { opened.push((m as { ctx: RequestContext }).ctx); };
      subscribe('sluice:tunnel:open', onOpen);
      t.after(() => unsubscribe('sluice:tunnel:open', onOpen));
      const before = adopted();
      const path = '/vars/x?a=1&b=two';
      const client = await impl.open(t, proxy.port, path, { 'X-Probe': 'p-alpha', Cookie: 'session=s1; other=2', 'X-Other': 'dropped' });
      const x = await upstream.nextExchange();
      assert.deepEqual(values(x.head, 'x-kind'), ['kind-alpha'], 'the map was read at the handshake');
      if (impl.native) await waitFor(() => adopted() > before, { timeoutMs: WAIT_MS, what: 'the addon to take the tunnel' });
      const ctx = await waitFor(() => opened.find((c) => c.rawUri === path), { timeoutMs: WAIT_MS, what: 'the tunnel-open event' });
      if (maps) {
        assert.equal(ctx.headers['x-other'], 'dropped', 'kept whole');
        assert.notEqual(ctx.mapCache, null);
      } else {
        assert.deepEqual(Object.keys(ctx.headers).filter((h) => !['host', 'upgrade', 'x-probe', 'cookie'].includes(h)), [], 'only the headers its end reads');
        assert.equal(ctx.mapCache, null);
      }
      // Bytes both ways, so that the tunnel's figures moved before its end.
      client.io.write(maskedFrame(Opcode.TEXT, 'up'));
      await x.conn.readUntil((b) => b.length >= 8, WAIT_MS);
      x.conn.socket.write(serverFrame(Opcode.TEXT, 'down'));
      await readUntil(client.io, (b) => b.length >= 6, WAIT_MS);
      await endBoth({ client, up: x.conn, ctx });
      const [line] = await logLines(log, 1);
      const [atEnd, atHandshake] = (line ?? '').split('#');
      assert.equal(atEnd, atHandshake, 'read at the end as at the handshake');
      const fields = (atEnd ?? '').split('|');
      assert.match(fields[0] ?? '', /^(GET|CONNECT) \/vars\/x\?a=1&b=two HTTP\/(1\.1|2\.0)$/);
      for (const v of ['p-alpha', 't-1', 'from-upstream', '7', 's1', 'two', ...(maps ? ['kind-alpha'] : [])]) assert.ok(fields.includes(v), `${v} in ${atEnd}`);
    });
  }

  test(`${name}: a close frame without a status code is 1005; the upstream's close first is /upstream`, async (t) => {
    const log = tempDir(t).join('access.log');
    const upstream = await startScriptedUpstream(t, (x) => switching101({ accept: acceptKey(values(x.head, 'sec-websocket-key')[0] ?? '') }));
    const proxy = await contractProxy(t, impl, upstream.addr, {
      http: `log_format ws '$websocket_close_code "$websocket_subprotocol"';\n  access_log ${log} ws;`,
    });
    const events = tunnelEvents(t, proxy.port);
    const tunnel = await openTunnel(t, impl, proxy, upstream, events, '/empty-close');
    tunnel.up.socket.write(serverFrame(Opcode.CLOSE));
    await readUntil(tunnel.client.io, (b) => b.length >= 2, WAIT_MS);
    tunnel.client.io.end(maskedFrame(Opcode.CLOSE, closePayload(1000, '')));
    await tunnel.up.readToEnd(WAIT_MS);
    tunnel.up.socket.end();
    await readToEnd(tunnel.client.io, WAIT_MS);
    await closedCleanly(tunnel);
    await closedEvent(events, '/empty-close');
    assert.deepEqual(await logLines(log, 1), ['1005/upstream "-"']);
  });
}
