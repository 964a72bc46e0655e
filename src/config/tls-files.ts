/**
 * Files named by the `ssl_*` and `proxy_ssl_*` directives, read once per load through the build
 * context, with problems reported once per message and place (many servers may inherit one line).
 */
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { BuildContext } from './build-context.js';
import { openFailedMessage } from './include.js';
import type { ConfigFileRef, LoadedCertificate, SourceLoc } from './types.js';

export const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Files read during one load, so a certificate inherited by many servers is read (and reported) once. */
export interface LoadCache {
  readonly files: Map<string, { bytes: Buffer; text: string } | { error: unknown }>;
  readonly pairs: Map<string, LoadedCertificate | null>;
  readonly reported: Set<string>;
}

const caches = new WeakMap<BuildContext, LoadCache>();

export function cacheOf(cx: BuildContext): LoadCache {
  let c = caches.get(cx);
  if (c === undefined) caches.set(cx, c = { files: new Map(), pairs: new Map(), reported: new Set() });
  return c;
}

export function problemOnce(cx: BuildContext, message: string, at: SourceLoc, hint?: string): void {
  const cache = cacheOf(cx);
  const key = `${message}\0${at.file}\0${at.line}`;
  if (cache.reported.has(key)) return;
  cache.reported.add(key);
  cx.problem(message, at, hint);
}

/** A file named by a directive, read once per load (through the build context, see BuildContext.readFile). */
export function readText(cx: BuildContext, path: string): { bytes: Buffer; text: string } | { error: unknown } {
  const cache = cacheOf(cx);
  let r = cache.files.get(path);
  if (r === undefined) {
    try {
      const bytes = cx.readFile(path);
      r = { bytes, text: bytes.toString('utf8') };
    } catch (error) {
      r = { error };
    }
    cache.files.set(path, r);
  }
  return r;
}

/** "BIO_new_file() failed (2: No such file or directory)", from nginx's wording of a failed read. */
/** nginx's message when it cannot open a file it hands to OpenSSL by name: `BIO_new_file("/x") failed (2: No such file or directory)`. */
export function bioNewFileFailed(path: string, error: unknown): string {
  const open = openFailedMessage(path, error);
  return `BIO_new_file("${path}") failed ${open.slice(open.lastIndexOf(' (') + 1)}`;
}

export function readFailure(path: string, error: unknown): string {
  const open = openFailedMessage(path, error);
  return `BIO_new_file() failed ${open.slice(open.lastIndexOf(' (') + 1)}`;
}

/**
 * Reads a PEM file of certificate revocation lists (`ssl_crl`, `proxy_ssl_crl`), checked by
 * OpenSSL as the handshakes will use it; nginx's X509_LOOKUP_load_file() wording on failure.
 */
export function readCrl(cx: BuildContext, ref: ConfigFileRef): string | null {
  const r = readText(cx, ref.path);
  const failed = `X509_LOOKUP_load_file("${ref.path}") failed`;
  if ('error' in r) {
    problemOnce(cx, `${failed} ${readFailure(ref.path, r.error).slice('BIO_new_file() failed '.length)}`, ref.loc, PATH_HINT);
    return null;
  }
  if (!r.text.includes('-----BEGIN X509 CRL-----')) {
    problemOnce(cx, `${failed} (no CRL in the file)`, ref.loc, `"${ref.path}" must hold PEM CRLs ("-----BEGIN X509 CRL-----")`);
    return null;
  }
  try {
    createSecureContext({ crl: r.text });
  } catch (error) {
    problemOnce(cx, `${failed} (${(error as Error).message})`, ref.loc, 'the file holds a "-----BEGIN X509 CRL-----" block that OpenSSL cannot read');
    return null;
  }
  return r.text;
}

export const PATH_HINT = 'check the path; a relative path starts at the prefix (the directory of the main configuration file, or -p)';

/** Reads a PEM file of one or more certificates; reports nginx-style problems and returns null on failure. */
export function readCertificates(cx: BuildContext, ref: ConfigFileRef, what: string): { pem: string; first: X509Certificate } | null {
  const r = readText(cx, ref.path);
  if ('error' in r) {
    problemOnce(cx, `cannot load ${what} "${ref.path}": ${readFailure(ref.path, r.error)}`, ref.loc, PATH_HINT);
    return null;
  }
  const blocks = r.text.match(PEM_CERT) ?? [];
  let first: X509Certificate | null = null;
  for (const block of blocks) {
    try {
      const x = new X509Certificate(block);
      first ??= x;
    } catch (error) {
      problemOnce(cx, `cannot load ${what} "${ref.path}": PEM_read_bio_X509() failed (${(error as Error).message})`, ref.loc,
        'the file holds a "-----BEGIN CERTIFICATE-----" block that is not a valid X.509 certificate');
      return null;
    }
  }
  if (first === null) {
    problemOnce(cx, `cannot load ${what} "${ref.path}": PEM_read_bio_X509_AUX() failed (no start line)`, ref.loc,
      `"${ref.path}" must hold PEM certificates ("-----BEGIN CERTIFICATE-----")`);
    return null;
  }
  return { pem: r.text, first };
}

