/** The compression filter's body encoder: nothing it produces is lost before its reader comes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { compressionDefaults } from '../../config/directives/gzip.js';
import { testContext } from '../context/fixtures.js';
import { ResponseEncoder } from './compression.js';
import type { ContentCoding } from './compression.js';

const BODY = Buffer.from('body { color: red; }\n'.repeat(200));

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

for (const coding of ['gzip', 'br'] as const satisfies readonly ContentCoding[]) {
  test(`${coding}: a reader attached turns after the body was compressed still gets all of it, and the ratio counts it`, async () => {
    const ctx = testContext({ 'accept-encoding': coding }, { uri: '/a.css' });
    const encoder = new ResponseEncoder(ctx, compressionDefaults(), coding, BODY.length);
    const zs = encoder.attach(Readable.from([BODY], { objectMode: false }));
    // A static file's reader is attached after the handler's await (the file is closed first):
    // let the source flow and zlib finish its work before anyone reads.
    for (let i = 0; i < 20; i++) await turn();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const out = await readAll(zs);
    assert.deepEqual(coding === 'gzip' ? gunzipSync(out) : brotliDecompressSync(out), BODY);
    assert.equal(ctx.compressed?.bytesIn, BODY.length);
    assert.equal(ctx.compressed?.bytesOut, out.length);
    assert.equal(ctx.compressed?.done, true);
  });
}
