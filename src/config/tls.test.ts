import assert from 'node:assert/strict';
import { test } from 'node:test';
import { distinctCertificates } from './tls.js';

const cert = (body: string): string => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;

test('distinctCertificates keeps each certificate once, in order, whatever its line breaks', () => {
  const a = cert('QUFB\nQUFB');
  const aAgain = cert('QUFBQUFB');
  const b = cert('QkJC');
  assert.equal(distinctCertificates(`${a}\n${b}\n${aAgain}\n${b}`), `${a}\n${b}`);
  assert.equal(distinctCertificates(`${a}\n${b}\n`), `${a}\n${b}\n`, 'no repeat: the text as it was');
});
