/** Fixtures shared by the config unit tests (compiled with them; not part of the public API). */
import assert from 'node:assert/strict';
import { loadConfig, type LoadOptions } from './load.js';
import type { Config, ConfigProblem, SockAddr } from './types.js';

/** A fake DNS so tests never depend on the network. */
export const FAKE_HOSTS: Readonly<Record<string, readonly SockAddr[]>> = {
  'backend.test': [{ host: '10.0.0.1', port: 0, family: 4 }, { host: '10.0.0.2', port: 0, family: 4 }],
  'v6.test': [{ host: '::1', port: 0, family: 6 }],
  localhost: [{ host: '127.0.0.1', port: 0, family: 4 }],
};

export const lookups: string[] = [];

export async function fakeResolveHost(host: string): Promise<SockAddr[]> {
  lookups.push(host);
  const found = FAKE_HOSTS[host];
  if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return [...found];
}

/** Lines joined with "\n", so a test can see which line is which. */
export function lines(...l: string[]): string {
  return l.join('\n');
}

export async function load(text: string, opts: Partial<LoadOptions> = {}) {
  return loadConfig({ text, resolveHost: fakeResolveHost, ...opts });
}

export function show(p: ConfigProblem): string {
  return `${p.message} in ${p.file}:${p.line}`;
}

/** Loads text that must be valid; fails the test with every problem otherwise. */
export async function good(text: string, opts: Partial<LoadOptions> = {}): Promise<Config> {
  const r = await load(text, opts);
  if (!r.ok) assert.fail(`expected a valid config, got:\n${r.problems.map(show).join('\n')}`);
  return r.config;
}

/** Loads text that must be invalid; returns its problems. */
export async function bad(text: string, opts: Partial<LoadOptions> = {}): Promise<ConfigProblem[]> {
  const r = await load(text, opts);
  if (r.ok) assert.fail('expected problems, the config loaded');
  return r.problems;
}

/** A minimal valid frame around an http {} body. */
export function http(...body: string[]): string {
  return lines('events {}', 'http {', ...body, '}');
}
