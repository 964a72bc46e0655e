/**
 * Shared by the static-file suites: one request on a fresh connection with exactly the given
 * method, target and headers, and the answer's status, headers and body.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { headerValue, rawRequest, type ResponseHead } from '../helpers/raw-client.js';

export interface Answer {
  readonly status: number;
  readonly head: ResponseHead;
  readonly body: Buffer;
  /** A header's value (the first line of it), or undefined. */
  header(name: string): string | undefined;
  /** Every header name sent, lower-cased. */
  readonly names: readonly string[];
}

/** One request (`Connection: close`), `host` as the Host header. */
export async function request(port: number, method: string, target: string, headers: Readonly<Record<string, string>> = {}, host = 'localhost'): Promise<Answer> {
  let text = `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
  const res = await rawRequest(port, `${text}\r\n`);
  assert.ok(res.head, `a response to ${method} ${target}`);
  const head = res.head;
  return {
    status: head.statusCode,
    head,
    body: res.body,
    header: (name) => headerValue(head, name),
    names: head.headers.map(([n]) => n.toLowerCase()),
  };
}

export function get(port: number, target: string, headers: Readonly<Record<string, string>> = {}): Promise<Answer> {
  return request(port, 'GET', target, headers);
}

/** The lines of an access log written so far ([] before the file exists). */
export function accessLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}
