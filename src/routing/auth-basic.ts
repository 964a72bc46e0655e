/**
 * ngx_http_auth_basic_module at request time: the access phase asks for `Authorization: Basic`
 * credentials and checks them against the `auth_basic_user_file` (read when it changes, as nginx
 * reads it on every request, so edits apply without a reload). Password formats are nginx's own
 * (ngx_crypt): `{PLAIN}`, `{SHA}`, `{SSHA}`, `$apr1$` and, like glibc's crypt(), `$1$` (MD5-crypt).
 * Other schemes (bcrypt, SHA-crypt, DES) are logged and answered 500, as nginx does when crypt()
 * fails. {@link verifyPassword} adds bcrypt (`$2a$`, `$2b$`, `$2y$`, as `htpasswd -B` writes) for
 * the checks that may wait (the forward proxy's): bcrypt is slow on purpose, so it runs in slices.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Settings } from '../config/types.js';

/** What the access phase concluded. */
export type AuthOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 401 | 500 | 403; readonly log?: string; readonly realm?: string };

interface UserFile {
  readonly mtimeMs: number;
  readonly size: number;
  readonly users: ReadonlyMap<string, string>;
}

const files = new Map<string, UserFile>();

/** The users of an htpasswd file ("user:hash" lines, # comments), re-read when its mtime or size changes. */
export function usersOf(path: string): ReadonlyMap<string, string> {
  const st = statSync(path);
  const cached = files.get(path);
  if (cached !== undefined && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.users;
  const users = new Map<string, string>();
  for (const raw of readFileSync(path, 'latin1').split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const user = line.slice(0, colon);
    // Later fields (htdigest-style "user:hash:comment") are not part of the hash.
    const rest = line.slice(colon + 1);
    const next = rest.indexOf(':');
    if (!users.has(user)) users.set(user, next === -1 ? rest : rest.slice(0, next));
  }
  files.set(path, { mtimeMs: st.mtimeMs, size: st.size, users });
  return users;
}

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(v: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++, v >>= 6) s += ITOA64[v & 0x3f];
  return s;
}

/** MD5-crypt (Poul-Henning Kamp's), with `$1$` or Apache's `$apr1$` magic. */
export function md5Crypt(password: string, salt: string, magic: string): string {
  const pw = Buffer.from(password, 'latin1');
  const sl = Buffer.from(salt.slice(0, 8), 'latin1');
  const md5 = (...parts: Buffer[]): Buffer => {
    const h = createHash('md5');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  let final = md5(pw, sl, pw);
  const ctx: Buffer[] = [pw, Buffer.from(magic, 'latin1'), sl];
  for (let pl = pw.length; pl > 0; pl -= 16) ctx.push(final.subarray(0, Math.min(16, pl)));
  for (let i = pw.length; i; i >>= 1) ctx.push((i & 1) !== 0 ? Buffer.from([0]) : pw.subarray(0, 1));
  final = md5(...ctx);
  for (let i = 0; i < 1000; i++) {
    const parts: Buffer[] = [];
    parts.push((i & 1) !== 0 ? pw : final);
    if (i % 3 !== 0) parts.push(sl);
    if (i % 7 !== 0) parts.push(pw);
    parts.push((i & 1) !== 0 ? final : pw);
    final = md5(...parts);
  }
  const f = final;
  const out = to64((f[0]! << 16) | (f[6]! << 8) | f[12]!, 4) + to64((f[1]! << 16) | (f[7]! << 8) | f[13]!, 4)
    + to64((f[2]! << 16) | (f[8]! << 8) | f[14]!, 4) + to64((f[3]! << 16) | (f[9]! << 8) | f[15]!, 4)
    + to64((f[4]! << 16) | (f[10]! << 8) | f[5]!, 4) + to64(f[11]!, 2);
  return `${magic}${salt.slice(0, 8)}$${out}`;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether `password` matches `hash`; null when the scheme is not supported. */
export function checkPassword(password: string, hash: string): boolean | null {
  if (hash.startsWith('{PLAIN}')) return same(password, hash.slice(7));
  if (hash.startsWith('{SHA}')) return same(createHash('sha1').update(password, 'latin1').digest('base64'), hash.slice(5));
  if (hash.startsWith('{SSHA}')) {
    const raw = Buffer.from(hash.slice(6), 'base64');
    if (raw.length <= 20) return false;
    const digest = createHash('sha1').update(Buffer.from(password, 'latin1')).update(raw.subarray(20)).digest();
    return digest.length === 20 && timingSafeEqual(digest, raw.subarray(0, 20));
  }
  for (const magic of ['$apr1$', '$1$']) {
    if (hash.startsWith(magic)) {
      const salt = hash.slice(magic.length).split('$')[0] ?? '';
      return same(md5Crypt(password, salt, magic), hash);
    }
  }
  return null;
}

/**
 * checkPassword, plus bcrypt (compared asynchronously, in slices of the event loop). bcryptjs is
 * loaded on the first bcrypt hash only: most processes never meet one, and loading it costs
 * start-up time.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean | null> {
  if (!/^\$2[aby]\$[0-9]{2}\$/.test(hash)) return checkPassword(password, hash);
  const { default: bcrypt } = await import('bcryptjs');
  return bcrypt.compare(password, hash);
}

export function credentials(header: string | undefined): { user: string; password: string } | null {
  if (header === undefined || !/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** nginx's access phase for auth_basic: ok, 401 (ask again, with the realm), or 500. */
export function checkAuthBasic(settings: Settings, authorization: string | undefined): AuthOutcome {
  const realm = settings.authBasicRealm;
  const userFile = settings.authBasicUserFile;
  if (realm === null || userFile === null) return { ok: true };
  const auth = { realm, userFile };
  const creds = credentials(authorization);
  const ask = { ok: false, status: 401, realm: auth.realm } as const;
  if (creds === null) return authorization === undefined ? ask : { ...ask, log: 'no user/password was provided for basic authentication' };
  let users: ReadonlyMap<string, string>;
  try {
    users = usersOf(auth.userFile);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, status: e.code === 'EACCES' ? 403 : 500, log: `open() "${auth.userFile}" failed (${e.code ?? e.message})` };
  }
  const hash = users.get(creds.user);
  if (hash === undefined) return { ...ask, log: `user "${creds.user}" was not found in "${auth.userFile}"` };
  const ok = checkPassword(creds.password, hash);
  if (ok === null) return { ok: false, status: 500, log: `crypt() failed: the password scheme of user "${creds.user}" in "${auth.userFile}" is not supported` };
  return ok ? { ok: true } : { ...ask, log: `user "${creds.user}": password mismatch` };
}
