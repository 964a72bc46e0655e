/**
 * ngx_http_autoindex_module: a directory listing in nginx's html, json, jsonp or xml, byte for
 * byte (names are bytes: a file name that is not UTF-8 is listed as it is). Hidden entries (a
 * leading ".") are left out; directories come first, then names in byte order.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import type { FileSettings } from '../config/types.js';
import { escapeHtml, escapeJson, escapeUri } from '../core/escape.js';

export interface ListedEntry {
  /** The name's bytes, one char per byte. */
  readonly name: string;
  readonly dir: boolean;
  readonly file: boolean;
  /** Seconds. */
  readonly mtime: number;
  readonly size: number;
}

/** Why an entry could not be listed: nginx skips it (EACCES, logged) or fails the listing. */
export interface ListingProblem {
  readonly path: string;
  readonly err: unknown;
  readonly fatal: boolean;
}

/** Reads a directory's entries with their stat (a broken link is listed with its own lstat, as nginx). */
export async function readEntries(dir: string, onProblem: (p: ListingProblem) => void): Promise<ListedEntry[] | null> {
  const list = await readdir(dir, { encoding: 'buffer' });
  const out: ListedEntry[] = [];
  const base = Buffer.from(`${dir}/`);
  for (const raw of list) {
    const name = raw.toString('latin1');
    if (name.startsWith('.')) continue;
    const full = Buffer.concat([base, raw]);
    let s: Stats;
    try {
      s = await stat(full);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ELOOP') {
        onProblem({ path: full.toString(), err, fatal: code !== 'EACCES' });
        if (code === 'EACCES') continue;
        return null;
      }
      try {
        s = await lstat(full);
      } catch (err2) {
        onProblem({ path: full.toString(), err: err2, fatal: true });
        return null;
      }
    }
    out.push({ name, dir: s.isDirectory(), file: s.isFile(), mtime: Math.floor(s.mtimeMs / 1000), size: s.size });
  }
  out.sort((a, b) => (a.dir !== b.dir ? (a.dir ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** NGX_HTTP_AUTOINDEX_NAME_LEN: the width of the name column. */
const NAME_LEN = 50;

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** nginx's human size: up to 9999 bytes as is, then K, M, G rounded half up. */
function humanSize(length: number): string {
  const G = 1024 * 1024 * 1024;
  const M = 1024 * 1024;
  let size: number;
  let scale = '';
  if (length > G - 1) {
    size = Math.floor(length / G) + (length % G > G / 2 - 1 ? 1 : 0);
    scale = 'G';
  } else if (length > M - 1) {
    size = Math.floor(length / M) + (length % M > M / 2 - 1 ? 1 : 0);
    scale = 'M';
  } else if (length > 9999) {
    size = Math.floor(length / 1024) + (length % 1024 > 511 ? 1 : 0);
    scale = 'K';
  } else {
    return ` ${String(length).padStart(6)}`;
  }
  return `${String(size).padStart(6)}${scale}`;
}

/** The html listing; `uri` is the directory's URI as bytes. */
export function htmlListing(uri: string, entries: readonly ListedEntry[], files: FileSettings, nowOffsetMinutes: number): string {
  const title = escapeHtml(uri);
  let out = `<html>\r\n<head><title>Index of ${title}</title></head>\r\n<body>\r\n<h1>Index of ${title}</h1><hr><pre><a href="../">../</a>\r\n`;
  for (const e of entries) {
    out += `<a href="${escapeUri(e.name, 'component')}${e.dir ? '/' : ''}">`;
    let len = e.name.length;
    const escaped = escapeHtml(e.name) !== e.name;
    if (len > NAME_LEN) {
      // nginx keeps 47 bytes and marks the cut with "..>".
      out += `${escaped ? escapeHtml(e.name.slice(0, NAME_LEN - 3)) : e.name.slice(0, NAME_LEN - 3)}..&gt;</a>`;
    } else {
      out += escaped ? escapeHtml(e.name) : e.name;
      if (e.dir && NAME_LEN - len > 0) {
        out += '/';
        len++;
      }
      out += '</a>';
      if (NAME_LEN - len > 0) out += ' '.repeat(NAME_LEN - len);
    }
    // autoindex_localtime adds the offset in force now, not the one at the file's time (nginx).
    const t = new Date((e.mtime + (files.autoindexLocaltime ? nowOffsetMinutes * 60 : 0)) * 1000);
    out += ` ${two(t.getUTCDate())}-${MONTHS[t.getUTCMonth()]!}-${t.getUTCFullYear()} ${two(t.getUTCHours())}:${two(t.getUTCMinutes())} `;
    if (files.autoindexExactSize) out += e.dir ? `${' '.repeat(18)}-` : String(e.size).padStart(19);
    else out += e.dir ? '      -' : humanSize(e.size);
    out += '\r\n';
  }
  return `${out}</pre><hr></body>\r\n</html>\r\n`;
}

function kind(e: ListedEntry): string {
  return e.dir ? 'directory' : e.file ? 'file' : 'other';
}

/** The json listing, or jsonp with `callback`. */
export function jsonListing(entries: readonly ListedEntry[], callback: string | null): string {
  let out = callback === null ? '[' : `/* callback */\r\n${callback}([`;
  entries.forEach((e, i) => {
    const mtime = new Date(e.mtime * 1000).toUTCString();
    out += `\r\n{ "name":"${escapeJson(e.name)}", "type":"${kind(e)}", "mtime":"${mtime}${e.file ? `", "size":${e.size}` : '"'} }${i < entries.length - 1 ? ',' : ''}`;
  });
  out += '\r\n]';
  return callback === null ? out : `${out});`;
}

/** The xml listing. */
export function xmlListing(entries: readonly ListedEntry[]): string {
  let out = '<?xml version="1.0"?>\r\n<list>\r\n';
  for (const e of entries) {
    const t = new Date(e.mtime * 1000);
    const when = `${String(t.getUTCFullYear()).padStart(4, '0')}-${two(t.getUTCMonth() + 1)}-${two(t.getUTCDate())}T${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())}Z`;
    out += `<${kind(e)} mtime="${when}"${e.file ? ` size="${e.size}"` : ''}>${escapeHtml(e.name)}</${kind(e)}>\r\n`;
  }
  return `${out}</list>\r\n`;
}

/**
 * The jsonp callback from `?callback=` (the raw argument): null when there is none (plain json),
 * or nginx's reason to answer 400 (more than 128 characters, or not letters, digits, "_", ".").
 */
export function jsonpCallback(value: string | undefined): { readonly name: string | null } | { readonly refused: string } {
  if (value === undefined || value === '') return { name: null };
  if (value.length > 128) return { refused: `client sent too long callback name: "${value}"` };
  if (!/^[A-Za-z0-9_.]+$/.test(value)) return { refused: `client sent invalid callback name: "${value}"` };
  return { name: value };
}
