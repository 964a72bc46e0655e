import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FETCH_WAIT_MS, PrimarySessions, WorkerSessionSync } from './shared-sessions.js';
import type { SessionAnswer, SessionRequest } from './shared-sessions.js';

const session = (id: string, expires: number) => ({ zone: 'SSL', size: 1024 * 1024, id, data: Buffer.from(`data-${id}`).toString('base64'), expires });

test('a worker that misses gets the session another stored, through the primary; the first of its ids that is there and live', async () => {
  let now = 1_000;
  const primary = new PrimarySessions(() => now);
  const worker = new WorkerSessionSync((m: SessionRequest) => {
    if (m.sluice === 'tls-session') primary.stored(m.session);
    else primary.fetch(m, (a: SessionAnswer) => { if (a.sluice === 'tls-session-found') worker.found(a); });
  });
  worker.publish(session('aa', 5_000));
  worker.publish(session('bb', 2_000));
  assert.deepEqual(await worker.fetch('SSL', ['cc', 'aa']), session('aa', 5_000));
  assert.equal(await worker.fetch('other', ['aa']), null, 'another zone');
  now = 3_000;
  assert.equal(await worker.fetch('SSL', ['bb']), null, 'expired');
  assert.equal((await worker.fetch('SSL', ['bb', 'aa']))?.id, 'aa');
});

test('a primary that does not answer: the handshake goes on as a miss after FETCH_WAIT_MS', async () => {
  const sent: SessionRequest[] = [];
  const worker = new WorkerSessionSync((m) => sent.push(m));
  const started = Date.now();
  assert.equal(await worker.fetch('SSL', ['aa']), null);
  assert.ok(Date.now() - started >= FETCH_WAIT_MS - 50);
  assert.equal(sent[0]?.sluice, 'tls-session-fetch');
  // A late answer finds nothing waiting and changes nothing.
  worker.found({ id: 1, session: session('aa', Date.now() + 1_000) });
});
